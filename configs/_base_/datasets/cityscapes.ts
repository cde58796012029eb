// MMSegmentation 0.x configs/_base_/datasets/cityscapes.py
import { defineConfig } from '@segkit/core';

const dataset_type = 'CityscapesDataset';
const data_root = 'data/cityscapes/';
const img_norm_cfg = { mean: [123.675, 116.28, 103.53] as [number, number, number], std: [58.395, 57.12, 57.375] as [number, number, number], to_rgb: true };
const crop_size: [number, number] = [512, 1024];
const train_pipeline = [
  { type: 'LoadImageFromFile' as const },
  { type: 'LoadAnnotations' as const },
  { type: 'Resize' as const, img_scale: [2048, 1024] as [number, number], ratio_range: [0.5, 2.0] as [number, number] },
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
    img_scale: [2048, 1024] as [number, number],
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

export default defineConfig({
  plugins: ['@segkit/datasets', '@segkit/transforms'],
  data: {
    samples_per_gpu: 2,
    workers_per_gpu: 2,
    train: { type: dataset_type, data_root, img_dir: 'leftImg8bit/train', ann_dir: 'gtFine/train', pipeline: train_pipeline },
    val: { type: dataset_type, data_root, img_dir: 'leftImg8bit/val', ann_dir: 'gtFine/val', pipeline: test_pipeline },
    test: { type: dataset_type, data_root, img_dir: 'leftImg8bit/val', ann_dir: 'gtFine/val', pipeline: test_pipeline },
  },
});
