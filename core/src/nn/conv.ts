import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { isShapesOnly, reportFlops } from './flops';
import { pair, type Pair } from './utils';
import { nextOpSeed } from './random';
import type { OnnxDim, OnnxExportContext, OnnxValue } from '../export/onnx/types';

/** tfjs's explicit NHWC padding (not exported by tfjs-core). */
type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

/**
 * 2-D convolution with PyTorch's semantics on NHWC tensors. The weight is stored HWIO
 * [kh, kw, in/groups, out] (tfjs's layout); init is PyTorch's default kaiming_uniform(a=√5),
 * i.e. U(±1/√fan_in) for weight and bias.
 */
export class Conv2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, options: Conv2dOptions = {}) {
    super();
    this.kernelSize = pair(kernelSize, 'Conv2d kernelSize');
    this.stride = pair(options.stride ?? 1, 'Conv2d stride');
    this.padding = pair(options.padding ?? 0, 'Conv2d padding');
    this.dilation = pair(options.dilation ?? 1, 'Conv2d dilation');
    this.groups = options.groups ?? 1;
    if (!Number.isInteger(this.groups) || this.groups < 1 || inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new Error(`Conv2d: inChannels (${inChannels}) and outChannels (${outChannels}) must be divisible by groups (${this.groups})`);
    }
    const [kh, kw] = this.kernelSize;
    const bound = 1 / Math.sqrt((inChannels / this.groups) * kh * kw);
    this.weight = this.registerParameter('weight', tf.randomUniform([kh, kw, inChannels / this.groups, outChannels], -bound, bound, 'float32', nextOpSeed()));
    this.bias = options.bias ?? true ? this.registerParameter('bias', tf.randomUniform([outChannels], -bound, bound, 'float32', nextOpSeed())) : null;
  }

  get isDepthwise(): boolean {
    return this.groups > 1 && this.groups === this.inChannels;
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D {
    if (x.rank !== 4 || x.shape[3] !== this.inChannels) {
      throw new Error(`Conv2d: expected input [N,H,W,${this.inChannels}], got [${x.shape.join(',')}]`);
    }
    const y = tf.tidy(() => {
      if (isShapesOnly()) return tf.zeros(this.outputShape(x.shape)) as tf.Tensor4D;
      const convolved = this.convolve(x);
      return this.bias ? (tf.add(convolved, this.bias) as tf.Tensor4D) : convolved;
    });
    const [n, ho, wo] = y.shape;
    const [kh, kw] = this.kernelSize;
    const positions = n * ho * wo;
    reportFlops(this, positions * this.outChannels * kh * kw * (this.inChannels / this.groups) + (this.bias ? positions * this.outChannels : 0));
    return y;
  }

  /** PyTorch's output size: floor((size + 2·pad − dilation·(k − 1) − 1) / stride) + 1. */
  outputShape([n, h, w]: readonly number[]): [number, number, number, number] {
    return [n!, this.outputSize(h!, 0), this.outputSize(w!, 1), this.outChannels];
  }

  private outputSize(input: number, axis: 0 | 1): number {
    return Math.floor((input + 2 * this.padding[axis] - this.dilation[axis] * (this.kernelSize[axis] - 1) - 1) / this.stride[axis]) + 1;
  }

  /** ONNX Conv: the weight as OIHW (PyTorch's layout), PyTorch's symmetric padding. */
  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    if (typeof x.shape[1] === 'number' && x.shape[1] !== this.inChannels) ctx.unsupported(`expects ${this.inChannels} input channels, got a value of shape [${x.shape.join(',')}]`);
    // HWIO [kh,kw,in/g,out] → OIHW [out,in/g,kh,kw].
    const weight = ctx.initializer('weight', this.weight, { permutation: [3, 2, 0, 1] });
    const bias = this.bias ? ctx.initializer('bias', this.bias) : null;
    const [n, , h, w] = x.shape;
    const size = (input: OnnxDim | undefined, axis: 0 | 1) => (typeof input === 'number' ? this.outputSize(input, axis) : null);
    const [ph, pw] = this.padding;
    return ctx.node('Conv', [x, weight, bias], {
      attributes: { kernel_shape: this.kernelSize, strides: this.stride, pads: [ph, pw, ph, pw], dilations: this.dilation, group: this.groups },
      shape: [n ?? null, this.outChannels, size(h, 0), size(w, 1)],
    });
  }

  private convolve(x: tf.Tensor4D): tf.Tensor4D {
    const [kh, kw] = this.kernelSize;
    // A dilation only matters along an axis whose kernel is larger than 1.
    const dh = kh > 1 ? this.dilation[0] : 1;
    const dw = kw > 1 ? this.dilation[1] : 1;
    if (dh === 1 && dw === 1) return this.groupedConv(x, this.stride, padArgument(this.padding, this.kernelSize, this.stride));
    // tfjs has no gradient for dilated convolutions (and no strided+dilated kernel): run the
    // undilated kernel on the space-to-batch rearranged input (the atrous trick), then stride.
    const [ph, pw] = this.padding;
    const padded = ph || pw ? tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]]) : x;
    const [, hp, wp] = padded.shape;
    const extraH = (dh - (hp % dh)) % dh;
    const extraW = (dw - (wp % dw)) % dw;
    const blocks: [number, number][] = [[0, extraH], [0, extraW]];
    const batched = tf.spaceToBatchND(padded, [dh, dw], blocks) as tf.Tensor4D;
    const dense = tf.batchToSpaceND(this.groupedConv(batched, 1, 'valid'), [dh, dw], blocks) as tf.Tensor4D;
    const [sh, sw] = this.stride;
    if (sh === 1 && sw === 1) return dense;
    // Every s-th position (tfjs has no gradient for stridedSlice; gather has one).
    const every = (size: number, step: number) => tf.range(0, size, step, 'int32');
    const rows = sh === 1 ? dense : tf.gather(dense, every(dense.shape[1], sh), 1);
    return (sw === 1 ? rows : tf.gather(rows, every(rows.shape[2], sw), 2)) as tf.Tensor4D;
  }

  private groupedConv(x: tf.Tensor4D, stride: Pair, pad: number | 'valid' | ExplicitPadding): tf.Tensor4D {
    const strides = pair(stride);
    if (this.groups === 1) return tf.conv2d(x, this.weight as tf.Tensor4D, strides, pad);
    const [kh, kw] = this.kernelSize;
    if (this.isDepthwise) {
      const multiplier = this.outChannels / this.inChannels;
      // [kh,kw,1,in·m] → [kh,kw,in,m]: output channel i·m + j belongs to input channel i in both layouts.
      return tf.depthwiseConv2d(x, tf.reshape(this.weight, [kh, kw, this.inChannels, multiplier]) as tf.Tensor4D, strides, pad);
    }
    const inputs = tf.split(x, this.groups, 3);
    const filters = tf.split(this.weight, this.groups, 3);
    return tf.concat(inputs.map((input, g) => tf.conv2d(input as tf.Tensor4D, filters[g] as tf.Tensor4D, strides, pad)), 3);
  }
}

/**
 * tfjs's padding argument for PyTorch's symmetric padding (convolution and pooling). A single number only
 * when kernel and stride are square too: tfjs computes the output size of numeric padding with the kernel's
 * height and the stride's height on both axes, which gives a wrong width for a 1×3 kernel with padding 1.
 */
export function padArgument(
  [ph, pw]: readonly [number, number],
  [kh, kw]: readonly [number, number],
  [sh, sw]: readonly [number, number],
): number | ExplicitPadding {
  return ph === pw && kh === kw && sh === sw ? ph : [[0, 0], [ph, ph], [pw, pw], [0, 0]];
}
