import { defineConfig } from '@segkit/core';

// Training trick 4 (MMSegmentation's training_tricks tutorial): several losses per head, summed by
// loss_name into the total (each name must contain 'loss' to be trained).
// Note: MMSegmentation's own file of this name changes only the decode head (the auxiliary head keeps
// CE x0.4); we follow the tutorial text, which gives both heads CE x1.0 + Dice x3.0.
export default defineConfig({
  _base_: './fcn_unet_s5-d16_64x64_40k_drive.ts',
  plugins: ['@segkit/loss-cross-entropy', '@segkit/loss-dice'],
  model: {
    decode_head: {
      loss_decode: [
        { type: 'CrossEntropyLoss', loss_name: 'loss_ce', loss_weight: 1.0 },
        { type: 'DiceLoss', loss_name: 'loss_dice', loss_weight: 3.0 },
      ],
    },
    auxiliary_head: {
      loss_decode: [
        { type: 'CrossEntropyLoss', loss_name: 'loss_ce', loss_weight: 1.0 },
        { type: 'DiceLoss', loss_name: 'loss_dice', loss_weight: 3.0 },
      ],
    },
  },
});
