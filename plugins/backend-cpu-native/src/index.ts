import '@tensorflow/tfjs-backend-cpu'; // the native backend starts from cpu's kernels
import { definePlugin, type SegkitPlugin } from '@segkit/core';
import { nativeBackendProvider, PACKAGE_NAME } from './provider';

export { nativeBackendProvider, createNativeBackendProvider } from './provider';
export { NativeBackend, registerNativeBackend, NATIVE_BACKEND_NAME } from './native-backend';
export { BufferPool, DEFAULT_POOL_MB, POOL_ENV, type BufferPoolStats, type InitialValues } from './buffer-pool';
export { loadAddon, DEFAULT_ADDON_PATHS, type AddonLoadResult } from './addon';
export { registerFastCpuKernels, fastCpuKernelsRegistered } from './js-kernels';
export type { NativeAddon, ConvEngine, WindowGeometry } from './engine';
export { describeNativeBackend, isaRequestProblem, ISA_ENV } from './isa';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../package.json') as { version: string };

/** `plugins: ['@segkit/backend-cpu-native']` makes `backend: 'native'` (and 'auto') available. */
export const plugin: SegkitPlugin = definePlugin({
  name: PACKAGE_NAME,
  version,
  components: { backends: [nativeBackendProvider] },
});
