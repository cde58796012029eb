import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { isShapesOnly, reportFlops } from './flops';
import { SegkitError } from '../errors';
import { backendHasKernel } from '../plugin-system/backend';
import { describeValue, formatValue } from '../config/validation';

/**
 * Marker base of every normalisation layer (BatchNorm, GroupNorm, a future LayerNorm): the optimizer
 * constructor's `norm_decay_mult` rule and `isNormModule` recognise norms through it.
 */
export abstract class NormLayer extends Module {
  abstract readonly numFeatures: number;
}

export function isNormModule(module: Module): module is NormLayer {
  return module instanceof NormLayer;
}

export interface BatchNormOptions {
  momentum?: number | null;
  eps?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/**
 * PyTorch's BatchNorm2d over NHWC: batch statistics in train mode (biased variance for the output,
 * unbiased for the running update), running statistics in eval mode. `momentum: null` is the
 * cumulative average, as in PyTorch.
 */
export class BatchNorm2d extends NormLayer {
  readonly momentum: number | null;
  readonly eps: number;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  readonly weight: tf.Variable | null = null;
  readonly bias: tf.Variable | null = null;
  readonly runningMean: tf.Variable | null = null;
  readonly runningVar: tf.Variable | null = null;
  readonly numBatchesTracked: tf.Variable | null = null;

  constructor(readonly numFeatures: number, options: BatchNormOptions = {}) {
    super();
    this.momentum = options.momentum === undefined ? 0.1 : options.momentum;
    this.eps = options.eps ?? 1e-5;
    this.affine = options.affine ?? true;
    this.trackRunningStats = options.trackRunningStats ?? true;
    if (this.affine) {
      this.weight = this.registerParameter('weight', tf.ones([numFeatures]));
      this.bias = this.registerParameter('bias', tf.zeros([numFeatures]));
    }
    if (this.trackRunningStats) {
      this.runningMean = this.registerBuffer('running_mean', tf.zeros([numFeatures]));
      this.runningVar = this.registerBuffer('running_var', tf.ones([numFeatures]));
      this.numBatchesTracked = this.registerBuffer('num_batches_tracked', tf.scalar(0, 'int32'));
    }
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D {
    if (x.rank !== 4 || x.shape[3] !== this.numFeatures) {
      throw new Error(`BatchNorm2d: expected input [N,H,W,${this.numFeatures}], got [${x.shape.join(',')}]`);
    }
    reportFlops(this, x.size * (this.affine ? 2 : 1));
    if (isShapesOnly()) return x;
    return tf.tidy(() => {
      const offset = this.bias ?? undefined;
      const scale = this.weight ?? undefined;
      if (!this.training && this.runningMean && this.runningVar) {
        return tf.batchNorm4d(x, this.runningMean as tf.Tensor1D, this.runningVar as tf.Tensor1D, offset as tf.Tensor1D | undefined, scale as tf.Tensor1D | undefined, this.eps);
      }
      const track = this.training && this.runningMean && this.runningVar && this.numBatchesTracked;
      return batchNormWithBatchStats(x, this.weight, this.bias, this.eps, track ? (mean, variance) => this.updateRunningStats(x, mean, variance) : undefined);
    });
  }

  private updateRunningStats(x: tf.Tensor4D, mean: tf.Tensor, variance: tf.Tensor): void {
    const count = x.shape[0] * x.shape[1] * x.shape[2];
    if (count < 2) throw new Error(`BatchNorm2d: expected more than 1 value per channel when training, got input [${x.shape.join(',')}]`);
    const tracked = this.numBatchesTracked!;
    tracked.assign(tf.add(tracked, tf.scalar(1, 'int32')));
    // The cumulative average (momentum null) divides by the count on the device: no readback.
    const factor: number | tf.Tensor = this.momentum ?? tf.div(1, tf.cast(tracked, 'float32'));
    const blend = (running: tf.Variable, batch: tf.Tensor) =>
      running.assign(tf.add(tf.mul(running, tf.sub(1, factor)), tf.mul(batch, factor)));
    blend(this.runningMean!, mean);
    blend(this.runningVar!, tf.mul(variance, count / (count - 1)));
  }
}

const BATCH_AXES = [0, 1, 2];

/**
 * Optional backend kernels for training-mode batch norm over every axis but the last (NHWC, float32).
 * BATCH_MOMENTS_KERNEL: inputs { x } → [mean, variance (biased)], each [C].
 * BATCH_NORM_GRAD_KERNEL: inputs { x, dy, scale? }, attrs { varianceEpsilon } → [dx, dScale, dOffset], the
 * gradient below with the statistics recomputed from x. segkit's `native` backend registers both; on
 * other backends the same maths runs as generic ops.
 */
export const BATCH_MOMENTS_KERNEL = 'SegkitBatchMoments';
export const BATCH_NORM_GRAD_KERNEL = 'SegkitBatchNormGrad';

function batchMoments(x: tf.Tensor4D): { mean: tf.Tensor1D; variance: tf.Tensor1D } {
  if (backendHasKernel(BATCH_MOMENTS_KERNEL)) {
    const [mean, variance] = tf.engine().runKernel(BATCH_MOMENTS_KERNEL, { x }) as tf.Tensor1D[];
    return { mean, variance };
  }
  return tf.moments(x, BATCH_AXES) as { mean: tf.Tensor1D; variance: tf.Tensor1D };
}

/** [dx, dScale, dOffset] of batchNormWithBatchStats (dScale is computed even without a scale). */
function batchNormGradient(x: tf.Tensor4D, dy: tf.Tensor4D, scale: tf.Tensor1D | undefined, eps: number): tf.Tensor[] {
  if (backendHasKernel(BATCH_NORM_GRAD_KERNEL)) {
    const inputs: tf.NamedTensorMap = scale ? { x, dy, scale } : { x, dy };
    return tf.engine().runKernel(BATCH_NORM_GRAD_KERNEL, inputs, { varianceEpsilon: eps }) as tf.Tensor[];
  }
  const count = x.shape[0] * x.shape[1] * x.shape[2];
  const centered = tf.sub(x, tf.mean(x, BATCH_AXES));
  const invStd = tf.rsqrt(tf.add(tf.div(tf.sum(tf.square(centered), BATCH_AXES), count), eps));
  const dOffset = tf.sum(dy, BATCH_AXES);
  const dyCentered = tf.sum(tf.mul(dy, centered), BATCH_AXES); // Σ dy·(x − μ) = σ·dγ
  const centeredFactor = tf.mul(tf.square(invStd), tf.div(dyCentered, count));
  const outFactor = scale ? tf.mul(scale, invStd) : invStd;
  const dx = tf.mul(tf.sub(tf.sub(dy, tf.div(dOffset, count)), tf.mul(centered, centeredFactor)), outFactor);
  return [dx, tf.mul(dyCentered, invStd), dOffset];
}

/**
 * Batch normalisation with the batch's own statistics (biased variance) over N, H and W, with the
 * gradient written out: dx = γ·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)), dγ = Σ dy·x̂, dβ = Σ dy. Differentiating
 * tf.moments and tf.batchNorm instead costs dozens of full-size element-wise ops per layer; this is
 * about ten, or one kernel on a backend that has BATCH_NORM_GRAD_KERNEL. `onMoments` sees the
 * statistics (for the running averages) without putting them on the tape.
 */
export function batchNormWithBatchStats(
  x: tf.Tensor4D,
  weight: tf.Tensor1D | tf.Variable | null,
  bias: tf.Tensor1D | tf.Variable | null,
  eps: number,
  onMoments?: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void,
): tf.Tensor4D {
  const params = [weight, bias].filter((p): p is tf.Tensor1D => p !== null);
  const normalize = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor4D;
    const scale = weight ? (args[1] as tf.Tensor1D) : undefined;
    const offset = bias ? (args[args.length - 1] as tf.Tensor1D) : undefined;
    const { mean, variance } = batchMoments(input);
    onMoments?.(mean, variance);
    const value = tf.batchNorm4d(input, mean, variance, offset, scale, eps);
    // Only the input is saved: a saved intermediate would outlive this kernel scope, which tfjs's
    // leak check (on under IS_TEST, as segkit runs) rejects. The gradient recomputes the statistics.
    save([input]);
    const gradFunc = (dy: tf.Tensor4D, [savedInput]: tf.Tensor[]): tf.Tensor[] => {
      const [dx, dScale, dOffset] = batchNormGradient(savedInput as tf.Tensor4D, dy, scale, eps);
      return [dx, ...(scale ? [dScale] : []), ...(offset ? [dOffset] : [])];
    };
    return { value, gradFunc };
  });
  return tf.tidy('BatchNorm2d', () => normalize(x, ...params) as tf.Tensor4D);
}

/** GroupNorm(num_groups, num_channels): statistics per sample over each group of channels and all pixels. */
export class GroupNorm extends NormLayer {
  readonly weight: tf.Variable | null = null;
  readonly bias: tf.Variable | null = null;
  readonly eps: number;
  readonly affine: boolean;

  constructor(readonly numGroups: number, readonly numFeatures: number, options: { eps?: number; affine?: boolean } = {}) {
    super();
    if (!Number.isInteger(numGroups) || numGroups < 1 || numFeatures % numGroups !== 0) {
      throw new Error(`GroupNorm: num_channels (${numFeatures}) must be divisible by num_groups (${numGroups})`);
    }
    this.eps = options.eps ?? 1e-5;
    this.affine = options.affine ?? true;
    if (this.affine) {
      this.weight = this.registerParameter('weight', tf.ones([numFeatures]));
      this.bias = this.registerParameter('bias', tf.zeros([numFeatures]));
    }
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D {
    if (x.rank !== 4 || x.shape[3] !== this.numFeatures) {
      throw new Error(`GroupNorm: expected input [N,H,W,${this.numFeatures}], got [${x.shape.join(',')}]`);
    }
    reportFlops(this, x.size * (this.affine ? 2 : 1));
    if (isShapesOnly()) return x;
    return tf.tidy(() => {
      const [n, h, w, c] = x.shape;
      const grouped = tf.reshape(x, [n, h, w, this.numGroups, c / this.numGroups]);
      const { mean, variance } = tf.moments(grouped, [1, 2, 4], true);
      const normalized = tf.reshape(tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, this.eps))), [n, h, w, c]) as tf.Tensor4D;
      return this.weight && this.bias ? tf.add(tf.mul(normalized, this.weight), this.bias) : normalized;
    });
  }
}

/** MMCV's `norm_cfg`. */
export interface NormConfig {
  type: string;
  requires_grad?: boolean;
  eps?: number;
  momentum?: number | null;
  affine?: boolean;
  num_groups?: number;
}

const NORM_ABBREVIATIONS: Record<string, string> = { BN: 'bn', BN2d: 'bn', SyncBN: 'bn', GN: 'gn' };

/**
 * MMCV's `build_norm_layer`: returns the child name (`bn`/`gn` + postfix) and the layer.
 * SyncBN is BatchNorm2d on one device (what MMSegmentation does when not distributed).
 */
export function buildNormLayer(cfg: NormConfig, numFeatures: number, postfix: number | string = '', path = 'norm_cfg'): { name: string; layer: NormLayer } {
  if (!cfg || typeof cfg !== 'object' || typeof cfg.type !== 'string') {
    throw new SegkitError(`${path}: expected an object with a 'type' (BN, SyncBN, GN), got ${formatValue(cfg)}`, path);
  }
  const { type, requires_grad: requiresGrad = true, num_groups: numGroups, ...rest } = cfg;
  const abbreviation = NORM_ABBREVIATIONS[type];
  if (!abbreviation) throw new SegkitError(`${path}.type: unknown norm layer type '${type}'; supported: ${Object.keys(NORM_ABBREVIATIONS).join(', ')}`, path);
  const known = new Set(['eps', 'momentum', 'affine']);
  for (const key of Object.keys(rest)) {
    if (!known.has(key) || (type === 'GN' && key === 'momentum')) throw new SegkitError(`${path}.${key}: unknown option of norm layer ${type}`, path);
  }
  let layer: NormLayer;
  if (type === 'GN') {
    if (typeof numGroups !== 'number') throw new SegkitError(`${path}.num_groups: required for GN, got ${describeValue(numGroups)}`, path);
    if (numFeatures % numGroups !== 0) throw new SegkitError(`${path}.num_groups: ${numFeatures} channels are not divisible by num_groups ${numGroups}`, path);
    layer = new GroupNorm(numGroups, numFeatures, { eps: rest.eps, affine: rest.affine });
  } else {
    if (numGroups !== undefined) throw new SegkitError(`${path}.num_groups: unknown option of norm layer ${type}`, path);
    layer = new BatchNorm2d(numFeatures, { eps: rest.eps, momentum: rest.momentum, affine: rest.affine });
  }
  layer.requiresGrad(requiresGrad);
  return { name: `${abbreviation}${postfix}`, layer };
}
