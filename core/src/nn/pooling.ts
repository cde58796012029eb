import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { reportFlops } from './flops';
import { pair, type Pair } from './utils';

/** MaxPool2d(kernel, stride = kernel, padding = 0); padded positions never win (PyTorch's −∞ padding). */
export class MaxPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];

  constructor(kernelSize: Pair, stride?: Pair | null, padding: Pair = 0) {
    super();
    this.kernelSize = pair(kernelSize, 'MaxPool2d kernelSize');
    this.stride = pair(stride ?? kernelSize, 'MaxPool2d stride');
    this.padding = pair(padding, 'MaxPool2d padding');
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D {
    reportFlops(this, x.size);
    const [ph, pw] = this.padding;
    const pad = ph === pw ? ph : ([[0, 0], [ph, ph], [pw, pw], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]]);
    return tf.maxPool(x, this.kernelSize, this.stride, pad);
  }
}

/** AvgPool2d(kernel, stride = kernel, padding = 0) with PyTorch's default count_include_pad=True. */
export class AvgPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];

  constructor(kernelSize: Pair, stride?: Pair | null, padding: Pair = 0) {
    super();
    this.kernelSize = pair(kernelSize, 'AvgPool2d kernelSize');
    this.stride = pair(stride ?? kernelSize, 'AvgPool2d stride');
    this.padding = pair(padding, 'AvgPool2d padding');
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D {
    reportFlops(this, x.size);
    const [ph, pw] = this.padding;
    return tf.tidy(() => {
      // Zero padding first, so padded positions count in the average (count_include_pad).
      const padded = ph || pw ? tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]]) : x;
      return tf.avgPool(padded, this.kernelSize, this.stride, 'valid');
    });
  }
}

/** PyTorch's adaptive pooling bins: bin i covers [floor(i·size/out), ceil((i+1)·size/out)). */
export function adaptiveBins(size: number, out: number): [number, number][] {
  return Array.from({ length: out }, (_, i) => [Math.floor((i * size) / out), Math.ceil(((i + 1) * size) / out)]);
}

/** AdaptiveAvgPool2d(outputSize): averages over PyTorch's (possibly overlapping) bins, rows then columns. */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: [number, number];

  constructor(outputSize: Pair) {
    super();
    this.outputSize = pair(outputSize, 'AdaptiveAvgPool2d outputSize');
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D {
    reportFlops(this, x.size);
    return tf.tidy(() => poolAxis(poolAxis(x, 1, this.outputSize[0]), 2, this.outputSize[1]));
  }
}

function poolAxis(x: tf.Tensor4D, axis: 1 | 2, out: number): tf.Tensor4D {
  const size = x.shape[axis];
  if (size === out) return x;
  if (size % out === 0) {
    // Equal, non-overlapping bins: one pooling kernel.
    const k = size / out;
    const window: [number, number] = axis === 1 ? [k, 1] : [1, k];
    return tf.avgPool(x, window, window, 'valid');
  }
  // Overlapping bins: one matrix product with the bin-averaging matrix [out, size].
  const averaging = new Float32Array(out * size);
  adaptiveBins(size, out).forEach(([start, end], i) => averaging.fill(1 / (end - start), i * size + start, i * size + end));
  const [n, h, w, c] = x.shape;
  const batch = axis === 1 ? n : n * h;
  const matrix = tf.tile(tf.tensor3d(averaging, [1, out, size]), [batch, 1, 1]);
  const pooled = tf.matMul(matrix, tf.reshape(x, axis === 1 ? [n, h, w * c] : [n * h, w, c]));
  return tf.reshape(pooled, axis === 1 ? [n, out, w, c] : [n, h, out, c]);
}
