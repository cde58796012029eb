import '@tensorflow/tfjs-backend-cpu';
import { convKernels } from './conv-kernels';
import { dataKernels } from './data-kernels';
import { jsConvEngine } from './js-engine';
import { replaceKernels } from './kernel-registry';

let registered = false;

/**
 * Replaces the `cpu` backend's Conv2D, Conv2DBackpropInput and Conv2DBackpropFilter with the
 * TypeScript im2col + GEMM kernels (js-engine.ts), and Slice, SplitV, GatherV2 and
 * UnsortedSegmentSum with contiguous-copy versions (data-kernels.ts); the originals stay as
 * fallbacks for the cases these do not handle (NCHW, other dtypes). Idempotent. For machines where
 * the native addon cannot be built.
 */
export function registerFastCpuKernels(): void {
  if (registered) return;
  registered = true;
  replaceKernels('cpu', { ...convKernels(jsConvEngine), ...dataKernels });
}
