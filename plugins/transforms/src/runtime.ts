// `@segkit/transforms/runtime`: the steps that work on pixels in memory (everything but the file loaders),
// importing core only through `@segkit/core/runtime`, so a browser bundle runs the same test pipeline as Node.
import { definePlugin } from '@segkit/core/runtime';
import { Pad, RandomCrop, RandomFlip, Resize } from './geometric';
import { Normalize, PhotoMetricDistortion } from './photometric';
import { Collect, DefaultFormatBundle, ImageToTensor, MultiScaleFlipAug } from './formatting';

const { version } = require('../../package.json') as { version: string };

/** Every transform except LoadImageFromFile and LoadAnnotations (which read files with Node). */
export const pixelTransforms = [Resize, RandomCrop, RandomFlip, PhotoMetricDistortion, Normalize, Pad, DefaultFormatBundle, ImageToTensor, Collect, MultiScaleFlipAug] as const;

/** The transforms plugin without the file loaders (same name: load this one or the full one, not both). */
export const plugin = definePlugin({ name: '@segkit/transforms', version, components: { transforms: pixelTransforms } });
