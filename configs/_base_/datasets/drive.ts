// MMSegmentation 0.x configs/_base_/datasets/drive.py
import { defineConfig } from '@segkit/core';
import { img_norm_cfg, testPipeline, trainPipeline } from './pipelines';

const dataset_type = 'DRIVEDataset';
const data_root = 'data/DRIVE';
const img_scale: [number, number] = [584, 565];
const crop_size: [number, number] = [64, 64];
const train_pipeline = trainPipeline({ img_scale, crop_size, ratio_range: [0.5, 2.0], cat_max_ratio: 0.75, img_norm_cfg });
const test_pipeline = testPipeline({ img_scale, img_norm_cfg });

export default defineConfig({
  plugins: ['@segkit/datasets', '@segkit/transforms'],
  data: {
    samples_per_gpu: 4,
    workers_per_gpu: 4,
    train: {
      type: 'RepeatDataset',
      times: 40000,
      dataset: { type: dataset_type, data_root, img_dir: 'images/training', ann_dir: 'annotations/training', pipeline: train_pipeline },
    },
    val: { type: dataset_type, data_root, img_dir: 'images/validation', ann_dir: 'annotations/validation', pipeline: test_pipeline },
    test: { type: dataset_type, data_root, img_dir: 'images/validation', ann_dir: 'annotations/validation', pipeline: test_pipeline },
  },
});
