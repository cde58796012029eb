import * as path from 'path';

export const repo = path.resolve(__dirname, '..', '..');

/** A tiny UNet (3 stages, width 4) with all four tricks on 32×32 crops of generated DRIVE-like data. */
export function tinyConfig(dataRoot: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    _base_: [
      path.join(repo, 'configs/_base_/models/fcn_unet_s5-d16.ts'),
      path.join(repo, 'configs/_base_/datasets/synthetic_drive.ts'),
      path.join(repo, 'configs/_base_/default_runtime.ts'),
      path.join(repo, 'configs/_base_/schedules/schedule_40k.ts'),
    ],
    model: {
      backbone: { base_channels: 4, num_stages: 3, strides: [1, 1, 1], enc_num_convs: [1, 1, 1], dec_num_convs: [1, 1], downsamples: [true, true], enc_dilations: [1, 1, 1], dec_dilations: [1, 1] },
      decode_head: { in_channels: 4, in_index: 2, channels: 4, loss_decode: { type: 'CrossEntropyLoss', class_weight: [0.5, 2.0], loss_weight: 1.0 } },
      auxiliary_head: { in_channels: 8, in_index: 1, channels: 4 },
      test_cfg: { mode: 'slide', crop_size: [32, 32], stride: [21, 21] },
    },
    optimizer: { paramwise_cfg: { custom_keys: { head: { lr_mult: 10 } } } },
    runner: { max_iters: 4 },
    checkpoint_config: { interval: 2 },
    evaluation: { interval: 4, metric: 'mDice' },
    log_config: { interval: 2, hooks: [{ type: 'TextLoggerHook', by_epoch: false, to_file: true }, { type: 'JsonLoggerHook' }] },
    data: {
      samples_per_gpu: 2,
      workers_per_gpu: 0,
      train: {
        dataset: {
          data_root: dataRoot,
          pipeline: [
            { type: 'LoadImageFromFile' },
            { type: 'LoadAnnotations' },
            { type: 'RandomCrop', crop_size: [32, 32], cat_max_ratio: 0.75 },
            { type: 'RandomFlip', prob: 0.5 },
            { type: 'Normalize', mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true },
            { type: 'DefaultFormatBundle' },
            { type: 'Collect', keys: ['img', 'gt_semantic_seg'] },
          ],
        },
      },
      val: { data_root: dataRoot },
      test: { data_root: dataRoot },
    },
    seed: 7,
    ...overrides,
  };
}
