import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { isShapesOnly, reportFlops } from './flops';
import type { OnnxExportContext, OnnxValue } from '../export/onnx/types';

export type InterpolationMode = 'bilinear' | 'nearest';

export interface ResizeOptions {
  mode?: InterpolationMode;
  alignCorners?: boolean;
}

/** Source indices and weights of one output axis, exactly as PyTorch's upsample kernels compute them. */
export function interpolationWeights(
  inSize: number,
  outSize: number,
  mode: InterpolationMode,
  alignCorners: boolean,
): { lower: number[]; upper: number[]; upperWeight: number[] } {
  const lower: number[] = [];
  const upper: number[] = [];
  const upperWeight: number[] = [];
  for (let dst = 0; dst < outSize; dst++) {
    if (mode === 'nearest') {
      // PyTorch's legacy 'nearest': floor(dst · in/out), no half-pixel offset.
      const index = Math.min(Math.floor((dst * inSize) / outSize), inSize - 1);
      lower.push(index);
      upper.push(index);
      upperWeight.push(0);
      continue;
    }
    let source: number;
    if (alignCorners) source = outSize > 1 ? (dst * (inSize - 1)) / (outSize - 1) : 0;
    else source = Math.max(((dst + 0.5) * inSize) / outSize - 0.5, 0);
    const low = Math.min(Math.floor(source), inSize - 1);
    lower.push(low);
    upper.push(low < inSize - 1 ? low + 1 : low);
    upperWeight.push(source - low);
  }
  return { lower, upper, upperWeight };
}

/**
 * Backends whose ResizeBilinearGrad is the exact adjoint of ResizeBilinear, half-pixel centres
 * included; a backend plugin declares it (and tests it). tfjs's `cpu` kernel ignores half-pixel
 * centres (wrong gradients for align_corners=False) and swaps H and W in its output shape.
 */
const exactResizeGradientBackends = new Set<string>();

/** Lets `resize` use tfjs's one-kernel resizeBilinear on `backendName` (see above). */
export function declareExactResizeBilinearGradient(backendName: string): void {
  exactResizeGradientBackends.add(backendName);
}

/**
 * `F.interpolate(x, size, mode, align_corners)` for NHWC tensors, bilinear or nearest, up or down.
 * Bilinear runs as tfjs's resizeBilinear (one kernel each way) on a backend with an exact gradient,
 * and is built from gathers along each axis elsewhere; both give PyTorch's values.
 */
export function resize<T extends tf.Tensor4D>(x: T, size: readonly [number, number], options: ResizeOptions = {}): T {
  const { mode = 'bilinear', alignCorners = false } = options;
  if (x.rank !== 4) throw new Error(`resize: expected an NHWC tensor, got shape [${x.shape.join(',')}]`);
  if (x.shape[1] === size[0] && x.shape[2] === size[1]) return x;
  if (isShapesOnly()) return tf.zeros([x.shape[0], size[0], size[1], x.shape[3]]) as T;
  if (mode === 'bilinear' && exactResizeGradientBackends.has(tf.getBackend())) {
    // align_corners=False is tfjs's half-pixel centres; negative source coordinates clamp to row 0 in both.
    return tf.image.resizeBilinear(x, [size[0], size[1]], alignCorners, !alignCorners) as T;
  }
  return tf.tidy(() => interpolateAxis(interpolateAxis(x, 1, size[0], mode, alignCorners), 2, size[1], mode, alignCorners)) as T;
}

function interpolateAxis(x: tf.Tensor4D, axis: 1 | 2, outSize: number, mode: InterpolationMode, alignCorners: boolean): tf.Tensor4D {
  const inSize = x.shape[axis];
  if (inSize === outSize) return x;
  const { lower, upper, upperWeight } = interpolationWeights(inSize, outSize, mode, alignCorners);
  const low = tf.gather(x, tf.tensor1d(lower, 'int32'), axis);
  if (mode === 'nearest') return low;
  const high = tf.gather(x, tf.tensor1d(upper, 'int32'), axis);
  const shape = axis === 1 ? [1, outSize, 1, 1] : [1, 1, outSize, 1];
  const weightHigh = tf.tensor(upperWeight, shape, 'float32');
  const weightLow = tf.sub(1, weightHigh);
  return tf.add(tf.mul(low, weightLow), tf.mul(high, weightHigh));
}

/** `nn.Upsample` (a parameter-free module, e.g. InterpConv's first child); MMCV counts its output elements. */
export class Upsample extends Module {
  readonly size: [number, number] | null;
  readonly scaleFactor: number | null;
  readonly mode: InterpolationMode;
  readonly alignCorners: boolean;

  constructor(options: { size?: [number, number]; scale_factor?: number; mode?: InterpolationMode; align_corners?: boolean }) {
    super();
    this.size = options.size ?? null;
    this.scaleFactor = options.scale_factor ?? null;
    if (!this.size && !this.scaleFactor) throw new Error('Upsample: either size or scale_factor is required');
    this.mode = options.mode ?? 'nearest';
    this.alignCorners = options.align_corners ?? false;
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D {
    const size: [number, number] = this.size ?? [Math.floor(x.shape[1] * this.scaleFactor!), Math.floor(x.shape[2] * this.scaleFactor!)];
    const y = resize(x, size, { mode: this.mode, alignCorners: this.alignCorners });
    reportFlops(this, y.size);
    return y;
  }

  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    const size = this.size ?? ctx.scaleSize(ctx.spatialSize(x), this.scaleFactor!);
    return ctx.resize(x, size, { mode: this.mode, alignCorners: this.alignCorners });
  }
}
