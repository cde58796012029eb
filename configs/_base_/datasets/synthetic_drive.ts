// drive.py's pipelines on `segkit synth drive --out data/synthetic_drive` (128×128 images, so img_scale (128, 128)).
import { defineConfig } from '@segkit/core';
import { img_norm_cfg, testPipeline, trainPipeline } from './pipelines';

const data_root = 'data/synthetic_drive';
const img_scale: [number, number] = [128, 128];
const crop_size: [number, number] = [64, 64];
const test_pipeline = testPipeline({ img_scale, img_norm_cfg });

// Lists replace rather than merge, so the pipelines are restated with the new img_scale.
export default defineConfig({
  _base_: './drive.ts',
  data: {
    workers_per_gpu: 2,
    train: { dataset: { data_root, pipeline: trainPipeline({ img_scale, crop_size, ratio_range: [0.5, 2.0], cat_max_ratio: 0.75, img_norm_cfg }) } },
    val: { data_root, pipeline: test_pipeline },
    test: { data_root, pipeline: test_pipeline },
  },
});
