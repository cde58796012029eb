import { defineConfig } from '@segkit/core';
import { img_norm_cfg, testPipeline, trainPipeline } from '../_base_/datasets/pipelines';

// A small 19-class model for the README's analysis pictures (`segkit browse-dataset`, `confusion-matrix`,
// `analyze-logs`, `benchmark`): a 3-stage UNet with 16 base channels on `segkit synth cityscapes` scenes
// (128×256), trained for 150 iterations on 96×96 crops — weak on purpose, so the tools have errors to show.
const data_root = 'data/synthetic_cityscapes';
const img_scale: [number, number] = [256, 128];
const crop_size: [number, number] = [96, 96];
const test_pipeline = testPipeline({ img_scale, img_norm_cfg });

export default defineConfig({
  _base_: ['../_base_/models/fcn_unet_s5-d16.ts', '../_base_/datasets/cityscapes.ts', '../_base_/default_runtime.ts', '../_base_/schedules/schedule_40k.ts'],
  model: {
    backbone: { base_channels: 16, num_stages: 3, strides: [1, 1, 1], enc_num_convs: [2, 2, 2], dec_num_convs: [2, 2], downsamples: [true, true], enc_dilations: [1, 1, 1], dec_dilations: [1, 1] },
    decode_head: { in_channels: 16, in_index: 2, channels: 16, num_classes: 19 },
    auxiliary_head: null,
    test_cfg: { mode: 'whole' },
  },
  optimizer: { lr: 0.05 },
  runner: { max_iters: 150 },
  checkpoint_config: { interval: 150 },
  evaluation: { interval: 150, metric: 'mIoU' },
  log_config: { interval: 10 },
  data: {
    samples_per_gpu: 4,
    workers_per_gpu: 0,
    train: { data_root, pipeline: trainPipeline({ img_scale, crop_size, ratio_range: [0.75, 1.5], cat_max_ratio: 0.75, img_norm_cfg }) },
    val: { data_root, pipeline: test_pipeline },
    test: { data_root, pipeline: test_pipeline },
  },
  work_dir: 'work_dirs/synthetic-cityscapes',
  seed: 0,
});
