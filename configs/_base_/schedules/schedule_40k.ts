import { defineConfig } from '@segkit/core';

// MMSegmentation 0.x configs/_base_/schedules/schedule_40k.py
export default defineConfig({
  // DefaultOptimizerConstructor (optim-paramwise) builds every optimizer, as in MMCV.
  plugins: ['@segkit/optimizers', '@segkit/optim-paramwise', '@segkit/lr-schedulers'],
  // optimizer
  optimizer: { type: 'SGD', lr: 0.01, momentum: 0.9, weight_decay: 0.0005 },
  optimizer_config: {},
  // learning policy
  lr_config: { policy: 'poly', power: 0.9, min_lr: 1e-4, by_epoch: false },
  // runtime settings
  runner: { type: 'IterBasedRunner', max_iters: 40000 },
  checkpoint_config: { by_epoch: false, interval: 4000 },
  evaluation: { interval: 4000, metric: 'mIoU', pre_eval: true },
});
