/**
 * `@segkit/core/testing`: toy components and helpers for tests of segkit and of plugins (no test
 * framework needed: helpers throw plain Errors).
 */
export { recordingLogger, tempTree, errorMessage } from './helpers';
export { TinyCrossEntropy, ToyBackbone, ToyHead, toyPlugin, toyKernel, TOY_MODEL } from './toy-models';
