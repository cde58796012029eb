import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { nn } from '@segkit/core';
import type { NativeAddon } from './engine';
import { copyKernels, replaceKernels } from './kernel-registry';
import { nativeKernels } from './native-kernels';

export const NATIVE_BACKEND_NAME = 'native';

/**
 * The `native` tfjs backend: cpu's data storage and every cpu kernel, with the hot kernels
 * replaced by the C++ addon. Being a MathBackendCPU, the copied cpu kernels work on it unchanged.
 */
export class NativeBackend extends MathBackendCPU {
  constructor(readonly addon: NativeAddon) {
    super();
  }
}

/**
 * Registers the `native` backend and its kernels with tfjs (idempotent). tfjs priority 2 ranks it
 * above cpu (1) only for code that never picks a backend explicitly; segkit always does.
 */
export function registerNativeBackend(addon: NativeAddon): void {
  if (tf.findBackendFactory(NATIVE_BACKEND_NAME)) return;
  tf.registerBackend(NATIVE_BACKEND_NAME, () => new NativeBackend(addon), 2);
  copyKernels('cpu', NATIVE_BACKEND_NAME);
  replaceKernels(NATIVE_BACKEND_NAME, nativeKernels(addon));
  // native-kernels.test.ts checks that its ResizeBilinearGrad is the exact adjoint of ResizeBilinear.
  nn.declareExactResizeBilinearGradient(NATIVE_BACKEND_NAME);
}
