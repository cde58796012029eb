import '@tensorflow/tfjs-backend-cpu';
import { convKernels } from './conv-kernels';
import { dataKernels } from './data-kernels';
import { elementwiseKernels } from './elementwise-kernels';
import { jsElementwiseEngine } from './js-elementwise';
import { jsConvEngine } from './js-engine';
import { replaceKernels } from './kernel-registry';

let registered = false;

/**
 * Replaces the `cpu` backend's Conv2D, Conv2DBackpropInput and Conv2DBackpropFilter with the
 * TypeScript im2col + GEMM kernels (js-engine.ts), the data-movement kernels with contiguous-copy
 * versions (data-kernels.ts), and broadcasting arithmetic and reductions with collapsed-loop versions
 * (js-elementwise.ts); the originals stay as
 * fallbacks for the cases these do not handle (NCHW, other dtypes). Idempotent. For machines where
 * the native addon cannot be built.
 */
export function registerFastCpuKernels(): void {
  if (registered) return;
  registered = true;
  replaceKernels('cpu', { ...convKernels(jsConvEngine), ...dataKernels, ...elementwiseKernels(jsElementwiseEngine) });
}

/** Whether the TypeScript kernels have replaced tfjs's own for `cpu` in this process. */
export function fastCpuKernelsRegistered(): boolean {
  return registered;
}
