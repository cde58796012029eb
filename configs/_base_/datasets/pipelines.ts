// The train/test pipelines every MMSegmentation 0.x configs/_base_/datasets/*.py spells out, built from
// the values those files vary. Not a config itself: the dataset configs import it.

/** ImageNet mean/std (RGB), the `img_norm_cfg` of MMSegmentation's dataset configs. */
export const img_norm_cfg = { mean: [123.675, 116.28, 103.53] as [number, number, number], std: [58.395, 57.12, 57.375] as [number, number, number], to_rgb: true };

export type ImgNormCfg = typeof img_norm_cfg;

export interface TrainPipelineOptions {
  img_scale: [number, number];
  crop_size: [number, number];
  ratio_range: [number, number];
  cat_max_ratio: number;
  img_norm_cfg: ImgNormCfg;
}

/** Load, random rescale (`ratio_range` of `img_scale`), crop, flip, photometric distortion, normalize, pad to the crop. */
export function trainPipeline({ img_scale, crop_size, ratio_range, cat_max_ratio, img_norm_cfg }: TrainPipelineOptions) {
  return [
    { type: 'LoadImageFromFile' as const },
    { type: 'LoadAnnotations' as const },
    { type: 'Resize' as const, img_scale, ratio_range },
    { type: 'RandomCrop' as const, crop_size, cat_max_ratio },
    { type: 'RandomFlip' as const, prob: 0.5 },
    { type: 'PhotoMetricDistortion' as const },
    { type: 'Normalize' as const, ...img_norm_cfg },
    { type: 'Pad' as const, size: crop_size, pad_val: 0, seg_pad_val: 255 },
    { type: 'DefaultFormatBundle' as const },
    { type: 'Collect' as const, keys: ['img', 'gt_semantic_seg'] },
  ];
}

/** Load, then a single scale (`img_scale`, keep ratio), no flip, normalize. */
export function testPipeline({ img_scale, img_norm_cfg }: { img_scale: [number, number]; img_norm_cfg: ImgNormCfg }) {
  return [
    { type: 'LoadImageFromFile' as const },
    {
      type: 'MultiScaleFlipAug' as const,
      img_scale,
      // img_ratios: [0.5, 0.75, 1.0, 1.25, 1.5, 1.75],
      flip: false,
      transforms: [
        { type: 'Resize' as const, keep_ratio: true },
        { type: 'RandomFlip' as const },
        { type: 'Normalize' as const, ...img_norm_cfg },
        { type: 'ImageToTensor' as const, keys: ['img'] },
        { type: 'Collect' as const, keys: ['img'] },
      ],
    },
  ];
}
