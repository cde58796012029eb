import type { BackendProvider } from '@segkit/core';
import { loadAddon, type AddonLoadResult } from './addon';
import { NATIVE_BACKEND_NAME, registerNativeBackend } from './native-backend';
import { registerFastCpuKernels } from './js-kernels';
import { describeNativeBackend, isaRequestProblem } from './isa';

export const PACKAGE_NAME = '@segkit/backend-cpu-native';

/** A provider for the `native` backend; `load` is injectable so tests can simulate a missing build. */
export function createNativeBackendProvider(load: () => AddonLoadResult = () => loadAddon()): BackendProvider {
  return {
    name: NATIVE_BACKEND_NAME,
    describe() {
      const { addon } = load();
      return addon ? describeNativeBackend(addon) : undefined;
    },
    priority: 100,
    packageName: PACKAGE_NAME,
    async load() {
      try {
        const result = load();
        if (!result.addon) {
          // Without the addon, 'auto' falls back to cpu: give it the TypeScript im2col/GEMM kernels,
          // whose convolution gradients are hundreds of times faster than tfjs's own.
          registerFastCpuKernels();
          return `${result.reason}; cpu will run with segkit's TypeScript kernels`;
        }
        const isaProblem = isaRequestProblem(result.addon);
        if (isaProblem) return isaProblem;
        registerNativeBackend(result.addon);
        return null;
      } catch (error) {
        return `native backend failed to register: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
      }
    },
  };
}

export const nativeBackendProvider: BackendProvider = createNativeBackendProvider();
