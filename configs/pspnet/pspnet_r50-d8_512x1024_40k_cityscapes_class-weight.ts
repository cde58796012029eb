import { defineConfig } from '@segkit/core';

// Training trick 3 (MMSegmentation's training_tricks tutorial): class-balanced cross-entropy with
// DeepLab's Cityscapes class weights, in trainId order (road, sidewalk, ..., bicycle). As in 0.x, the
// weighted mean still divides by the pixel count, not by the sum of the weights.
export default defineConfig({
  _base_: './pspnet_r50-d8_512x1024_40k_cityscapes.ts',
  plugins: ['@segkit/loss-cross-entropy'],
  model: {
    decode_head: {
      loss_decode: {
        type: 'CrossEntropyLoss',
        use_sigmoid: false,
        loss_weight: 1.0,
        class_weight: [
          0.8373, 0.918, 0.866, 1.0345, 1.0166, 0.9969, 0.9754, 1.0489, 0.8786, 1.0023, 0.9539, 0.9843, 1.1116, 0.9037, 1.0865, 1.0955, 1.0865,
          1.1529, 1.0507,
        ],
      },
    },
  },
});
