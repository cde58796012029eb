// drive.py's pipelines on `segkit synth drive --out data/synthetic_drive` (128×128 images, so img_scale (128, 128)).
import { defineConfig } from '@segkit/core';

const dataset_type = 'DRIVEDataset';
const data_root = 'data/synthetic_drive';
const img_scale: [number, number] = [128, 128];
const img_norm_cfg = { mean: [123.675, 116.28, 103.53] as [number, number, number], std: [58.395, 57.12, 57.375] as [number, number, number], to_rgb: true };
const crop_size: [number, number] = [64, 64];
const train_pipeline = [
  { type: 'LoadImageFromFile' as const },
  { type: 'LoadAnnotations' as const },
  { type: 'Resize' as const, img_scale, ratio_range: [0.5, 2.0] as [number, number] },
  { type: 'RandomCrop' as const, crop_size, cat_max_ratio: 0.75 },
  { type: 'RandomFlip' as const, prob: 0.5 },
  { type: 'PhotoMetricDistortion' as const },
  { type: 'Normalize' as const, ...img_norm_cfg },
  { type: 'Pad' as const, size: crop_size, pad_val: 0, seg_pad_val: 255 },
  { type: 'DefaultFormatBundle' as const },
  { type: 'Collect' as const, keys: ['img', 'gt_semantic_seg'] },
];
const test_pipeline = [
  { type: 'LoadImageFromFile' as const },
  {
    type: 'MultiScaleFlipAug' as const,
    img_scale,
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

export default defineConfig({
  plugins: ['@segkit/datasets', '@segkit/transforms'],
  data: {
    samples_per_gpu: 4,
    workers_per_gpu: 2,
    train: {
      type: 'RepeatDataset',
      times: 40000,
      dataset: { type: dataset_type, data_root, img_dir: 'images/training', ann_dir: 'annotations/training', pipeline: train_pipeline },
    },
    val: { type: dataset_type, data_root, img_dir: 'images/validation', ann_dir: 'annotations/validation', pipeline: test_pipeline },
    test: { type: dataset_type, data_root, img_dir: 'images/validation', ann_dir: 'annotations/validation', pipeline: test_pipeline },
  },
});
