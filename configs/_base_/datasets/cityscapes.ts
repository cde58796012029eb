// MMSegmentation 0.x configs/_base_/datasets/cityscapes.py
import { defineConfig } from '@segkit/core';
import { img_norm_cfg, testPipeline, trainPipeline } from './pipelines';

const dataset_type = 'CityscapesDataset';
const data_root = 'data/cityscapes/';
const img_scale: [number, number] = [2048, 1024];
const crop_size: [number, number] = [512, 1024];
const train_pipeline = trainPipeline({ img_scale, crop_size, ratio_range: [0.5, 2.0], cat_max_ratio: 0.75, img_norm_cfg });
const test_pipeline = testPipeline({ img_scale, img_norm_cfg });

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
