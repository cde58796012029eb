import type { RegistryName } from './registries';

/**
 * Which segkit package provides a well-known type, so that an unknown-type error can say
 * which plugin to list (MMSegmentation users type these names from its docs).
 */
export const KNOWN_PROVIDERS: { readonly [K in RegistryName]?: Readonly<Record<string, string>> } = {
  backbones: { ResNetV1c: '@segkit/backbone-resnet', ResNet: '@segkit/backbone-resnet', UNet: '@segkit/backbone-unet' },
  heads: { PSPHead: '@segkit/head-psp', FCNHead: '@segkit/head-fcn' },
  losses: {
    CrossEntropyLoss: '@segkit/loss-cross-entropy',
    DiceLoss: '@segkit/loss-dice',
    FocalLoss: '@segkit/losses-extra',
    LovaszLoss: '@segkit/losses-extra',
    TverskyLoss: '@segkit/losses-extra',
  },
  samplers: { OHEMPixelSampler: '@segkit/sampler-ohem' },
  optimizers: { SGD: '@segkit/optimizers', Adam: '@segkit/optimizers', AdamW: '@segkit/optimizers' },
  optimizerConstructors: { DefaultOptimizerConstructor: '@segkit/optim-paramwise' },
  lrSchedulers: { poly: '@segkit/lr-schedulers', step: '@segkit/lr-schedulers', CosineAnnealing: '@segkit/lr-schedulers', fixed: '@segkit/lr-schedulers' },
  datasets: { CustomDataset: '@segkit/datasets', CityscapesDataset: '@segkit/datasets', DRIVEDataset: '@segkit/datasets', RepeatDataset: '@segkit/datasets' },
  transforms: Object.fromEntries(
    ['Collect', 'DefaultFormatBundle', 'ImageToTensor', 'LoadAnnotations', 'LoadImageFromFile', 'MultiScaleFlipAug', 'Normalize', 'Pad', 'PhotoMetricDistortion', 'RandomCrop', 'RandomFlip', 'Resize'].map((type) => [type, '@segkit/transforms']),
  ),
  hooks: {
    TextLoggerHook: '@segkit/hooks-logging',
    JsonLoggerHook: '@segkit/hooks-logging',
    ProgressBarHook: '@segkit/hooks-logging',
    CheckpointHook: '@segkit/hook-checkpoint',
    EvalHook: '@segkit/hook-eval',
    TensorboardLoggerHook: '@segkit/hook-tensorboard',
  },
  backends: { native: '@segkit/backend-cpu-native', tensorflow: '@segkit/backend-node', 'tensorflow-gpu': '@segkit/backend-node-gpu' },
};
