import { defineConfig } from '@segkit/core';

// Training trick 2 (MMSegmentation's training_tricks tutorial): online hard example mining in the decode
// head. With thresh set, the sampler keeps the pixels whose ground-truth probability is below
// max(0.7, the 100000·N-th smallest one); the map weights every loss of loss_decode (the auxiliary
// head has no sampler).
export default defineConfig({
  _base_: './pspnet_r50-d8_512x1024_40k_cityscapes.ts',
  plugins: ['@segkit/sampler-ohem'],
  model: {
    decode_head: { sampler: { type: 'OHEMPixelSampler', thresh: 0.7, min_kept: 100000 } },
  },
});
