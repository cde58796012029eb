import * as path from 'path';
import { SegkitError, readImage, readLabelMap, z, type ComponentOf, type NdArray, type PipelineResults, type Transform } from '@segkit/core';

/** Pixel value a `label_map` sends classes that are not kept. */
const REMOVED_CLASS = 255;

interface ImgInfo {
  filename: string;
  ann?: { seg_map: string };
}

/** Runs `read`, prefixing the step's name to a SegkitError so that the message says which pipeline step failed. */
async function inStep<T>(step: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof SegkitError) throw new SegkitError(`${step}: ${error.message}`, error.configPath);
    throw error;
  }
}

function joinPrefix(prefix: unknown, file: string): string {
  return typeof prefix === 'string' && prefix !== '' ? path.join(prefix, file) : file;
}

const loadImageSchema = z.object({
  to_float32: z.boolean().default(false),
  color_type: z.literal('color', { error: "only 'color' (3-channel BGR) is supported" }).default('color'),
  imdecode_backend: z.string().default('cv2'),
  file_client_args: z.record(z.string(), z.unknown()).default({ backend: 'disk' }),
});

/** LoadImageFromFile: `img` as [H,W,3] uint8 BGR, plus filename, shapes and a neutral img_norm_cfg. */
export const LoadImageFromFile: ComponentOf<'transforms', z.infer<typeof loadImageSchema>, Transform> = {
  type: 'LoadImageFromFile',
  schema: loadImageSchema,
  description: 'decode the image (BGR, uint8)',
  create(options) {
    return {
      async apply(results: PipelineResults) {
        const info = results.img_info as ImgInfo | undefined;
        if (!info || typeof info.filename !== 'string') throw new SegkitError("LoadImageFromFile: the results have no img_info.filename (it runs inside a dataset's pipeline)");
        const filename = joinPrefix(results.img_prefix, info.filename);
        let img: NdArray = await inStep('LoadImageFromFile', () => readImage(filename, { order: 'bgr' }));
        if (options.to_float32) img = { data: Float32Array.from(img.data), shape: img.shape };
        const shape = [...img.shape];
        return {
          ...results,
          filename,
          ori_filename: info.filename,
          img,
          img_shape: shape,
          ori_shape: [...shape],
          pad_shape: [...shape],
          scale_factor: 1.0,
          img_norm_cfg: { mean: [0, 0, 0], std: [1, 1, 1], to_rgb: false },
        };
      },
    };
  },
};

/**
 * Applies `reduce_zero_label` (0 → 255, k → k−1) and then a `label_map` {old: new} from a copy of the
 * original values, in place. Shared by the pipeline step and datasets' ground-truth loading.
 */
export function mapLabels(labels: Uint8Array, reduceZeroLabel: boolean, labelMap?: Readonly<Record<string, number>> | null): void {
  if (reduceZeroLabel) {
    for (let i = 0; i < labels.length; i++) {
      const v = labels[i]!;
      // uint8 arithmetic as in MMSegmentation: 0→255, then −1 (255→254), then 254→255.
      labels[i] = v === 0 ? 255 : v === 255 ? 255 : v - 1;
    }
  }
  if (labelMap && Object.keys(labelMap).length > 0) {
    const table = new Uint8Array(256);
    for (let v = 0; v < 256; v++) table[v] = v;
    for (const [from, to] of Object.entries(labelMap)) table[Number(from) & 0xff] = to < 0 ? REMOVED_CLASS : to & 0xff;
    for (let i = 0; i < labels.length; i++) labels[i] = table[labels[i]!]!;
  }
}

const loadAnnotationsSchema = z.object({
  reduce_zero_label: z.boolean().default(false),
  imdecode_backend: z.string().default('pillow'),
  file_client_args: z.record(z.string(), z.unknown()).default({ backend: 'disk' }),
});

/** LoadAnnotations: `gt_semantic_seg` [H,W] uint8 (palette PNGs as indices), reduce_zero_label, label_map. */
export const LoadAnnotations: ComponentOf<'transforms', z.infer<typeof loadAnnotationsSchema>, Transform> = {
  type: 'LoadAnnotations',
  schema: loadAnnotationsSchema,
  description: 'read the label map (raw values or palette indices of a PNG)',
  create(options) {
    return {
      async apply(results: PipelineResults) {
        const annInfo = results.ann_info as { seg_map?: string } | undefined;
        if (!annInfo || typeof annInfo.seg_map !== 'string') {
          throw new SegkitError('LoadAnnotations: the results have no ann_info.seg_map (is ann_dir set for this dataset?)');
        }
        const file = joinPrefix(results.seg_prefix, annInfo.seg_map);
        const seg = await inStep('LoadAnnotations', () => readLabelMap(file));
        mapLabels(seg.data, options.reduce_zero_label, results.label_map as Record<string, number> | undefined);
        return { ...results, gt_semantic_seg: seg, seg_fields: [...((results.seg_fields as string[] | undefined) ?? []), 'gt_semantic_seg'] };
      },
    };
  },
};
