// Type-checks every shipped config against the option types of all of segkit's plugins (their
// declaration merging into core's config types); `npm test` compiles this folder with `tsc -b`.
import type {} from '@segkit/backbone-resnet';
import type {} from '@segkit/backbone-unet';
import type {} from '@segkit/backend-cpu-native';
import type {} from '@segkit/backend-node';
import type {} from '@segkit/backend-node-gpu';
import type {} from '@segkit/datasets';
import type {} from '@segkit/example-custom-loss';
import type {} from '@segkit/head-fcn';
import type {} from '@segkit/head-psp';
import type {} from '@segkit/hook-checkpoint';
import type {} from '@segkit/hook-eval';
import type {} from '@segkit/hook-tensorboard';
import type {} from '@segkit/hooks-logging';
import type {} from '@segkit/loss-cross-entropy';
import type {} from '@segkit/loss-dice';
import type {} from '@segkit/losses-extra';
import type {} from '@segkit/lr-schedulers';
import type {} from '@segkit/optim-paramwise';
import type {} from '@segkit/optimizers';
import type {} from '@segkit/sampler-ohem';
import type {} from '@segkit/transforms';
export {};
