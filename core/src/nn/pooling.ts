import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { reportFlops } from './flops';
import { pair, type Pair } from './utils';
import { padArgument } from './conv';
import type { OnnxDim, OnnxExportContext, OnnxValue } from '../export/onnx/types';

/** PyTorch's pooling output size along one axis (floor mode); null stays null (known only at run time). */
function pooledSize(size: OnnxDim | undefined, kernel: number, stride: number, pad: number): OnnxDim {
  return typeof size === 'number' ? Math.floor((size + 2 * pad - kernel) / stride) + 1 : null;
}

function pooledShape(x: OnnxValue, kernel: [number, number], stride: [number, number], padding: [number, number]): OnnxDim[] {
  const [n, c, h, w] = x.shape;
  return [n ?? null, c ?? null, pooledSize(h, kernel[0], stride[0], padding[0]), pooledSize(w, kernel[1], stride[1], padding[1])];
}

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
    return tf.maxPool(x, this.kernelSize, this.stride, padArgument(this.padding, this.kernelSize, this.stride));
  }

  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    const [ph, pw] = this.padding;
    return ctx.node('MaxPool', [x], {
      attributes: { kernel_shape: this.kernelSize, strides: this.stride, pads: [ph, pw, ph, pw] },
      shape: pooledShape(x, this.kernelSize, this.stride, this.padding),
    });
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

  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    const [ph, pw] = this.padding;
    return ctx.node('AveragePool', [x], {
      attributes: { kernel_shape: this.kernelSize, strides: this.stride, pads: [ph, pw, ph, pw], count_include_pad: 1 },
      shape: pooledShape(x, this.kernelSize, this.stride, this.padding),
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

  /** Rows then columns, like `forward`; bins from the static size, or computed from the run-time size. */
  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    return poolAxisOnnx(ctx, poolAxisOnnx(ctx, x, 2, this.outputSize[0]), 3, this.outputSize[1]);
  }
}

/** Adaptive average pooling of one NCHW axis: one mean per PyTorch bin, concatenated. */
function poolAxisOnnx(ctx: OnnxExportContext, x: OnnxValue, axis: 2 | 3, out: number): OnnxValue {
  const size = x.shape[axis];
  if (size === out) return x;
  const withAxis = (d: OnnxDim) => x.shape.map((v, i) => (i === axis ? d : v));
  if (typeof size === 'number' && size % out === 0) {
    // Equal, non-overlapping bins: one pooling node.
    const k = size / out;
    const window = axis === 2 ? [k, 1] : [1, k];
    return ctx.node('AveragePool', [x], { attributes: { kernel_shape: window, strides: window }, shape: withAxis(out) });
  }
  const int64 = (v: number) => ctx.constant([v], [1], 'int64');
  let bounds: (i: number) => [OnnxValue, OnnxValue];
  if (typeof size === 'number') {
    const bins = adaptiveBins(size, out);
    bounds = (i) => [int64(bins[i]![0]), int64(bins[i]![1])];
  } else {
    // The same bins at run time: start floor(i·size/out), end ceil((i+1)·size/out); sizes are non-negative,
    // so ONNX's truncating integer Div is a floor, and ceil(a/b) = (a + b − 1) / b.
    const length = ctx.dimension(x, axis);
    const times = (i: number) => ctx.node('Mul', [length, int64(i)], { shape: [1], dtype: 'int64' });
    const divide = (a: OnnxValue) => ctx.node('Div', [a, int64(out)], { shape: [1], dtype: 'int64' });
    bounds = (i) => [divide(times(i)), divide(ctx.node('Add', [times(i + 1), int64(out - 1)], { shape: [1], dtype: 'int64' }))];
  }
  const axes = int64(axis);
  const means = Array.from({ length: out }, (_, i) => {
    const [start, end] = bounds(i);
    const bin = ctx.node('Slice', [x, start, end, axes], { shape: withAxis(null) });
    return ctx.node('ReduceMean', [bin], { attributes: { axes: [axis], keepdims: 1 }, shape: withAxis(1) });
  });
  return ctx.concat(means, axis);
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
