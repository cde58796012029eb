import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { nn } from '@segkit/core';
import { BufferPool } from './buffer-pool';
import type { NativeAddon } from './engine';
import { copyKernels, replaceKernels } from './kernel-registry';
import { nativeKernels } from './native-kernels';

export const NATIVE_BACKEND_NAME = 'native';

type BackendValues = Parameters<MathBackendCPU['write']>[0];

/**
 * The `native` tfjs backend: cpu's data storage and every cpu kernel, with the hot kernels
 * replaced by the C++ addon. Being a MathBackendCPU, the copied cpu kernels work on it unchanged.
 * Its kernels take their float32 outputs from `outputBuffers`, which gets a tensor's array back
 * when the last tensor data holding it is disposed. An array read by dataSync()/data() leaves the
 * pool for good, so it never changes after its tensor is gone.
 */
export class NativeBackend extends MathBackendCPU {
  readonly outputBuffers = BufferPool.fromEnvironment();

  constructor(readonly addon: NativeAddon) {
    super();
    this.outputBuffers.onEvict = (array) => addon.releasePages(array);
  }

  override write(values: BackendValues, shape: number[], dtype: tf.DataType): tf.DataId {
    const dataId = super.write(values, shape, dtype);
    this.outputBuffers.addHolder(values);
    return dataId;
  }

  override move(dataId: tf.DataId, values: BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    const replaced = this.data.has(dataId) ? this.data.get(dataId).values : null;
    super.move(dataId, values, shape, dtype, refCount);
    this.outputBuffers.addHolder(values);
    this.outputBuffers.dropHolder(replaced);
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : null;
    const released = super.disposeData(dataId, force);
    if (values && !this.data.has(dataId)) this.outputBuffers.dropHolder(values);
    return released;
  }

  override readSync(dataId: tf.DataId): tf.backend_util.BackendValues {
    const values = super.readSync(dataId);
    this.outputBuffers.detach(values);
    return values;
  }

  /** For cpu kernels reading an input (not handed to users): the array stays in the pool. */
  override bufferSync<R extends tf.Rank, D extends tf.DataType>(t: tf.TensorInfo): tf.TensorBuffer<R, D> {
    const values = this.data.get(t.dataId).values;
    if (t.dtype !== 'float32' || !this.outputBuffers.owns(values)) return super.bufferSync(t);
    return tf.buffer(t.shape, 'float32', values as Float32Array) as unknown as tf.TensorBuffer<R, D>;
  }

  override dispose(): void {
    this.outputBuffers.clear();
    super.dispose();
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
