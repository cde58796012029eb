import { defineConfig } from '@segkit/core';

// The demo (`npm run demo`): MMSegmentation's UNet-S5-D16 + FCN heads, narrowed to 16 base channels,
// trained on generated retina-like images (`segkit synth drive`) with all four training tricks on:
//   1. head lr x10            optimizer.paramwise_cfg.custom_keys.head.lr_mult
//   2. OHEM                   decode_head.sampler
//   3. class-balanced CE      class_weight (vessels are ~10% of the pixels)
//   4. CE + Dice x3           loss_decode lists on both heads (as the tutorial text does)
const class_weight = [0.8, 1.6];
const losses = (ceWeight: number, diceWeight: number) => [
  { type: 'CrossEntropyLoss' as const, loss_name: 'loss_ce', loss_weight: ceWeight, class_weight, avg_non_ignore: true },
  { type: 'DiceLoss' as const, loss_name: 'loss_dice', loss_weight: diceWeight },
];

export default defineConfig({
  _base_: ['../_base_/models/fcn_unet_s5-d16.ts', '../_base_/datasets/synthetic_drive.ts', '../_base_/default_runtime.ts', '../_base_/schedules/schedule_40k.ts'],
  plugins: ['@segkit/sampler-ohem', '@segkit/loss-dice', '@segkit/hook-tensorboard'],
  model: {
    backbone: { base_channels: 16 },
    decode_head: {
      in_channels: 16,
      channels: 16,
      sampler: { type: 'OHEMPixelSampler', thresh: 0.7, min_kept: 1000 },
      loss_decode: losses(1.0, 3.0),
    },
    auxiliary_head: { in_channels: 32, channels: 16, loss_decode: losses(0.4, 1.2) },
    test_cfg: { mode: 'slide', crop_size: [64, 64], stride: [42, 42] },
  },
  optimizer: { paramwise_cfg: { custom_keys: { head: { lr_mult: 10.0 } } } },
  runner: { max_iters: 500 },
  checkpoint_config: { interval: 250, max_keep_ckpts: 2 },
  evaluation: { interval: 250, metric: 'mDice' },
  // The base's text/JSON loggers and progress bar, plus TensorBoard event files in work_dirs/demo/tf_logs.
  log_config: {
    interval: 50,
    hooks: [{ type: 'TextLoggerHook', by_epoch: false }, { type: 'JsonLoggerHook', by_epoch: false }, { type: 'ProgressBarHook' }, { type: 'TensorboardLoggerHook' }],
  },
  data: { samples_per_gpu: 4, workers_per_gpu: 2 },
  work_dir: 'work_dirs/demo',
  seed: 0,
});
