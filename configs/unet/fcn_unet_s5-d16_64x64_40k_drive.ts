import { defineConfig } from '@segkit/core';

// MMSegmentation 0.x configs/unet/fcn_unet_s5-d16_64x64_40k_drive.py
export default defineConfig({
  _base_: ['../_base_/models/fcn_unet_s5-d16.ts', '../_base_/datasets/drive.ts', '../_base_/default_runtime.ts', '../_base_/schedules/schedule_40k.ts'],
  model: { test_cfg: { crop_size: [64, 64], stride: [42, 42] } },
  evaluation: { metric: 'mDice' },
});
