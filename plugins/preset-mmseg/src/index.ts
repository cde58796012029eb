import { definePlugin } from '@segkit/core';

const { version } = require('../../package.json') as { version: string };

/**
 * The standard plugin packages this preset depends on. Each declares its types in package.json
 * (`segkit.provides`), so the kernel loads the ones a config names without a `plugins` list.
 */
export const PRESET_PLUGINS = [
  '@segkit/backbone-resnet',
  '@segkit/backbone-unet',
  '@segkit/backend-cpu-native',
  '@segkit/datasets',
  '@segkit/head-fcn',
  '@segkit/head-psp',
  '@segkit/hook-checkpoint',
  '@segkit/hook-eval',
  '@segkit/hook-tensorboard',
  '@segkit/hooks-logging',
  '@segkit/loss-cross-entropy',
  '@segkit/loss-dice',
  '@segkit/losses-extra',
  '@segkit/lr-schedulers',
  '@segkit/optim-paramwise',
  '@segkit/optimizers',
  '@segkit/sampler-ohem',
  '@segkit/transforms',
] as const;

/** Registers nothing itself: the preset only brings its dependencies into the user's node_modules. */
export const plugin = definePlugin({ name: '@segkit/preset-mmseg', version, components: {} });
