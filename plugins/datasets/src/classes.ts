/** Class names and palettes (RGB) of the built-in datasets, in train-id order. */
export const CITYSCAPES_CLASSES = [
  'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign', 'vegetation', 'terrain',
  'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle',
] as const;

export const CITYSCAPES_PALETTE: readonly (readonly [number, number, number])[] = [
  [128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153], [153, 153, 153], [250, 170, 30],
  [220, 220, 0], [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60], [255, 0, 0], [0, 0, 142],
  [0, 0, 70], [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32],
];

export const DRIVE_CLASSES = ['background', 'vessel'] as const;
export const DRIVE_PALETTE: readonly (readonly [number, number, number])[] = [[120, 120, 120], [6, 230, 230]];

/** One row of Cityscapes' label table (cityscapesscripts' `labels.py`): name, id, trainId. */
export interface CityscapesLabel {
  name: string;
  id: number;
  trainId: number;
}

/** Cityscapes' label table; ids without a train class map to 255, the license plate (id −1) is never drawn. */
export const CITYSCAPES_LABELS: readonly CityscapesLabel[] = [
  ['unlabeled', 0, 255], ['ego vehicle', 1, 255], ['rectification border', 2, 255], ['out of roi', 3, 255], ['static', 4, 255],
  ['dynamic', 5, 255], ['ground', 6, 255], ['road', 7, 0], ['sidewalk', 8, 1], ['parking', 9, 255], ['rail track', 10, 255],
  ['building', 11, 2], ['wall', 12, 3], ['fence', 13, 4], ['guard rail', 14, 255], ['bridge', 15, 255], ['tunnel', 16, 255],
  ['pole', 17, 5], ['polegroup', 18, 255], ['traffic light', 19, 6], ['traffic sign', 20, 7], ['vegetation', 21, 8],
  ['terrain', 22, 9], ['sky', 23, 10], ['person', 24, 11], ['rider', 25, 12], ['car', 26, 13], ['truck', 27, 14],
  ['bus', 28, 15], ['caravan', 29, 255], ['trailer', 30, 255], ['train', 31, 16], ['motorcycle', 32, 17], ['bicycle', 33, 18],
  ['license plate', -1, -1],
].map(([name, id, trainId]) => ({ name: name as string, id: id as number, trainId: trainId as number }));

export const CITYSCAPES_LABEL_BY_NAME: ReadonlyMap<string, CityscapesLabel> = new Map(CITYSCAPES_LABELS.map((l) => [l.name, l]));
