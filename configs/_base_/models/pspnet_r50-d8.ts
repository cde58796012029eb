import { defineConfig } from '@segkit/core';

// MMSegmentation 0.x configs/_base_/models/pspnet_r50-d8.py. SyncBN is BatchNorm over the local
// batch on one device (as MMSegmentation converts it when not distributed).
const norm_cfg = { type: 'SyncBN', requires_grad: true };

export default defineConfig({
  plugins: ['@segkit/backbone-resnet', '@segkit/head-psp', '@segkit/head-fcn', '@segkit/loss-cross-entropy'],
  model: {
    type: 'EncoderDecoder',
    pretrained: 'open-mmlab://resnet50_v1c',
    backbone: {
      type: 'ResNetV1c',
      depth: 50,
      num_stages: 4,
      out_indices: [0, 1, 2, 3],
      dilations: [1, 1, 2, 4],
      strides: [1, 2, 1, 1],
      norm_cfg,
      norm_eval: false,
      style: 'pytorch',
      contract_dilation: true,
    },
    decode_head: {
      type: 'PSPHead',
      in_channels: 2048,
      in_index: 3,
      channels: 512,
      pool_scales: [1, 2, 3, 6],
      dropout_ratio: 0.1,
      num_classes: 19,
      norm_cfg,
      align_corners: false,
      loss_decode: { type: 'CrossEntropyLoss', use_sigmoid: false, loss_weight: 1.0 },
    },
    auxiliary_head: {
      type: 'FCNHead',
      in_channels: 1024,
      in_index: 2,
      channels: 256,
      num_convs: 1,
      concat_input: false,
      dropout_ratio: 0.1,
      num_classes: 19,
      norm_cfg,
      align_corners: false,
      loss_decode: { type: 'CrossEntropyLoss', use_sigmoid: false, loss_weight: 0.4 },
    },
    // model training and testing settings
    train_cfg: {},
    test_cfg: { mode: 'whole' },
  },
});
