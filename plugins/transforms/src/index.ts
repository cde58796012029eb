import { definePlugin, type TransformConfig } from '@segkit/core';
import { LoadAnnotations, LoadImageFromFile } from './loading';
import { pixelTransforms } from './runtime';

const { version } = require('../../package.json') as { version: string };

export { mapLabels } from './loading';
export { rescaleSize, randomScale, randomCropBox, cropIsBalanced } from './geometric';
export { photoMetricDistortion } from './photometric';
export { bgrToHsv, hsvToBgr } from './hsv';
export { resizeBilinear, resizeNearest, cropArray, flipArray, padArray } from './ndarray';

type Pair = [number, number];

declare module '@segkit/core' {
  interface TransformOptionsMap {
    LoadImageFromFile: { to_float32?: boolean; color_type?: 'color'; imdecode_backend?: string; file_client_args?: Record<string, unknown> };
    LoadAnnotations: { reduce_zero_label?: boolean; imdecode_backend?: string; file_client_args?: Record<string, unknown> };
    Resize: { img_scale?: Pair | Pair[] | null; multiscale_mode?: 'range' | 'value'; ratio_range?: Pair | null; keep_ratio?: boolean; min_size?: number | null };
    RandomCrop: { crop_size: Pair; cat_max_ratio?: number; ignore_index?: number };
    RandomFlip: { prob?: number | null; direction?: 'horizontal' | 'vertical' };
    PhotoMetricDistortion: { brightness_delta?: number; contrast_range?: Pair; saturation_range?: Pair; hue_delta?: number };
    Normalize: { mean: [number, number, number]; std: [number, number, number]; to_rgb?: boolean };
    Pad: { size?: Pair | null; size_divisor?: number | null; pad_val?: number; seg_pad_val?: number };
    DefaultFormatBundle: {};
    ImageToTensor: { keys: string[] };
    Collect: { keys: string[]; meta_keys?: string[] };
    MultiScaleFlipAug: {
      transforms: TransformConfig[];
      img_scale?: Pair | Pair[] | null;
      img_ratios?: number | number[] | null;
      flip?: boolean;
      flip_direction?: 'horizontal' | 'vertical' | ('horizontal' | 'vertical')[];
    };
  }
}

export const plugin = definePlugin({
  name: '@segkit/transforms',
  version,
  components: {
    transforms: [LoadImageFromFile, LoadAnnotations, ...pixelTransforms],
  },
});
