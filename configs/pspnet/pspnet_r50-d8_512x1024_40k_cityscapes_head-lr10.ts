import { defineConfig } from '@segkit/core';

// Training trick 1 (MMSegmentation's training_tricks tutorial): every parameter whose name contains
// 'head' (decode_head.* and auxiliary_head.*) trains with 10x the learning rate. The rest of the
// optimizer (SGD, lr 0.01, momentum 0.9, weight_decay 0.0005) comes from the base schedule.
export default defineConfig({
  _base_: './pspnet_r50-d8_512x1024_40k_cityscapes.ts',
  optimizer: { paramwise_cfg: { custom_keys: { head: { lr_mult: 10.0 } } } },
});
