import { defineConfig } from '@segkit/core';

// MMSegmentation 0.x configs/pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.py
export default defineConfig({
  _base_: ['../_base_/models/pspnet_r50-d8.ts', '../_base_/datasets/cityscapes.ts', '../_base_/default_runtime.ts', '../_base_/schedules/schedule_40k.ts'],
});
