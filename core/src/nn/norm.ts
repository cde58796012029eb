import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { isShapesOnly, reportFlops } from './flops';
import { SegkitError } from '../errors';
import { backendHasKernel } from '../plugin-system/backend';
import { describeValue, formatValue } from '../config/validation';
import { processGroup } from '../distributed/communicator';
import { syncBatchNormWithBatchStats } from './sync-batch-norm';
import type { OnnxExportContext, OnnxValue } from '../export/onnx/types';

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

  /** `relu`: return relu(batchNorm(x)), one fused kernel pair on backends that have them (ConvModule's BN + ReLU). */
  override forward(x: tf.Tensor4D, options: { relu?: boolean } = {}): tf.Tensor4D {
    if (x.rank !== 4 || x.shape[3] !== this.numFeatures) {
      throw new Error(`BatchNorm2d: expected input [N,H,W,${this.numFeatures}], got [${x.shape.join(',')}]`);
    }
    reportFlops(this, x.size * (this.affine ? 2 : 1));
    if (isShapesOnly()) return x;
    const relu = options.relu ?? false;
    return tf.tidy(() => {
      const offset = this.bias ?? undefined;
      const scale = this.weight ?? undefined;
      if (!this.training && this.runningMean && this.runningVar) {
        const y = tf.batchNorm4d(x, this.runningMean as tf.Tensor1D, this.runningVar as tf.Tensor1D, offset as tf.Tensor1D | undefined, scale as tf.Tensor1D | undefined, this.eps);
        return relu ? tf.relu(y) : y;
      }
      const track = this.training && this.runningMean && this.runningVar && this.numBatchesTracked;
      return this.normalizeWithBatchStats(x, relu, track ? (mean, variance, count) => this.updateRunningStats(x, mean, variance, count) : undefined);
    });
  }

  /** Training-mode normalisation with batch statistics (SyncBatchNorm2d takes them over every rank), then ReLU when `relu`. */
  protected normalizeWithBatchStats(x: tf.Tensor4D, relu: boolean, onMoments?: (mean: tf.Tensor1D, variance: tf.Tensor1D, count: number) => void): tf.Tensor4D {
    return batchNormWithBatchStats(x, this.weight, this.bias, this.eps, onMoments && ((mean, variance) => onMoments(mean, variance, x.shape[0] * x.shape[1] * x.shape[2])), relu);
  }

  /** Eval mode: ONNX BatchNormalization with the running statistics (runtimes fold it into the conv before). */
  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    if (this.training) ctx.unsupported('is in training mode (batch statistics); export a model in eval mode');
    if (!this.runningMean || !this.runningVar) ctx.unsupported('has no running statistics (track_running_stats=False normalises with batch statistics at inference)');
    const c = this.numFeatures;
    const scale = this.weight ? ctx.initializer('weight', this.weight) : ctx.constant(new Array<number>(c).fill(1), [c]);
    const offset = this.bias ? ctx.initializer('bias', this.bias) : ctx.constant(new Array<number>(c).fill(0), [c]);
    const mean = ctx.initializer('running_mean', this.runningMean);
    const variance = ctx.initializer('running_var', this.runningVar);
    return ctx.node('BatchNormalization', [x, scale, offset, mean, variance], { attributes: { epsilon: ctx.float(this.eps) }, shape: x.shape });
  }

  private updateRunningStats(x: tf.Tensor4D, mean: tf.Tensor, variance: tf.Tensor, count: number): void {
    if (count < 2) throw new Error(`BatchNorm2d: expected more than 1 value per channel when training, got input [${x.shape.join(',')}]`);
    const tracked = this.numBatchesTracked!;
    tracked.assign(tf.add(tracked, tf.scalar(1, 'int32')));
    // The cumulative average (momentum null) divides by the count on the device: no readback.
    const factor: number | tf.Tensor = this.momentum ?? tf.div(1, tf.cast(tracked, 'float32'));
    if (backendHasKernel(RUNNING_STATS_KERNEL) && typeof factor === 'number') {
      const inputs = { runningMean: this.runningMean!, runningVar: this.runningVar!, mean, variance };
      const [newMean, newVar] = tf.engine().runKernel(RUNNING_STATS_KERNEL, inputs, { factor, count }) as tf.Tensor[];
      this.runningMean!.assign(newMean!);
      this.runningVar!.assign(newVar!);
      return;
    }
    const blend = (running: tf.Variable, batch: tf.Tensor) =>
      running.assign(tf.add(tf.mul(running, tf.sub(1, factor)), tf.mul(batch, factor)));
    blend(this.runningMean!, mean);
    blend(this.runningVar!, tf.mul(variance, count / (count - 1)));
  }
}

/**
 * MMCV's SyncBN: in training, the batch statistics are those of the union of every rank's batch (the
 * process group's), with the matching backward pass, so N ranks × b samples normalise like one process
 * with BatchNorm over N × b. With one process it is BatchNorm2d.
 */
export class SyncBatchNorm2d extends BatchNorm2d {
  protected override normalizeWithBatchStats(x: tf.Tensor4D, relu: boolean, onMoments?: (mean: tf.Tensor1D, variance: tf.Tensor1D, count: number) => void): tf.Tensor4D {
    const group = processGroup();
    if (group.size === 1) return super.normalizeWithBatchStats(x, relu, onMoments);
    const y = syncBatchNormWithBatchStats(x, this.weight, this.bias, this.eps, onMoments, group);
    return relu ? tf.relu(y) : y;
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
/**
 * BATCH_NORM_TRAIN_KERNEL: inputs { x, scale?, offset? }, attrs { varianceEpsilon, relu } → [y, mean, variance]:
 * the statistics and the normalisation (then ReLU when `relu`) in one kernel.
 * BATCH_NORM_RELU_GRAD_KERNEL: inputs { x, dy, scale?, offset? }, attrs { varianceEpsilon } → [dx, dScale, dOffset]
 * of relu(batch norm), the ReLU mask recomputed from x. Optional like the two above (native has them).
 */
export const BATCH_NORM_TRAIN_KERNEL = 'SegkitBatchNormTrain';
/**
 * RUNNING_STATS_KERNEL: inputs { runningMean, runningVar, mean, variance (biased) }, attrs { factor, count } →
 * [running·(1 − factor) + mean·factor, running·(1 − factor) + variance·count/(count − 1)·factor]: BatchNorm2d's
 * running-statistics update in one kernel instead of seven (float32 rounding of the element-wise version).
 */
export const RUNNING_STATS_KERNEL = 'SegkitRunningStatsUpdate';
export const BATCH_NORM_RELU_GRAD_KERNEL = 'SegkitBatchNormReluGrad';

function batchMoments(x: tf.Tensor4D): { mean: tf.Tensor1D; variance: tf.Tensor1D } {
  if (backendHasKernel(BATCH_MOMENTS_KERNEL)) {
    const [mean, variance] = tf.engine().runKernel(BATCH_MOMENTS_KERNEL, { x }) as tf.Tensor1D[];
    return { mean, variance };
  }
  return tf.moments(x, BATCH_AXES) as { mean: tf.Tensor1D; variance: tf.Tensor1D };
}

/**
 * [dx, dScale, dOffset] of batchNormWithBatchStats (dScale is computed even without a scale); with
 * `relu` of relu(batch norm): dy passes only where the recomputed pre-activation is positive.
 */
function batchNormGradient(x: tf.Tensor4D, dy: tf.Tensor4D, scale: tf.Tensor1D | undefined, eps: number, relu?: { offset: tf.Tensor1D | undefined }): tf.Tensor[] {
  if (relu) {
    if (backendHasKernel(BATCH_NORM_RELU_GRAD_KERNEL)) {
      const inputs: tf.NamedTensorMap = { x, dy };
      if (scale) inputs.scale = scale;
      if (relu.offset) inputs.offset = relu.offset;
      return tf.engine().runKernel(BATCH_NORM_RELU_GRAD_KERNEL, inputs, { varianceEpsilon: eps }) as tf.Tensor[];
    }
    const { mean, variance } = batchMoments(x);
    const preActivation = tf.batchNorm4d(x, mean, variance, relu.offset, scale, eps);
    dy = tf.where(tf.greater(preActivation, 0), dy, tf.zerosLike(dy));
  }
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
 * statistics (for the running averages) without putting them on the tape. `relu` applies ReLU to the
 * output inside the same op (its gradient folded into the batch-norm gradient: no mask tensors).
 */
export function batchNormWithBatchStats(
  x: tf.Tensor4D,
  weight: tf.Tensor1D | tf.Variable | null,
  bias: tf.Tensor1D | tf.Variable | null,
  eps: number,
  onMoments?: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void,
  relu = false,
): tf.Tensor4D {
  const params = [weight, bias].filter((p): p is tf.Tensor1D => p !== null);
  const normalize = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor4D;
    const scale = weight ? (args[1] as tf.Tensor1D) : undefined;
    const offset = bias ? (args[args.length - 1] as tf.Tensor1D) : undefined;
    let value: tf.Tensor4D;
    if (backendHasKernel(BATCH_NORM_TRAIN_KERNEL)) {
      const inputs: tf.NamedTensorMap = { x: input };
      if (scale) inputs.scale = scale;
      if (offset) inputs.offset = offset;
      const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN_KERNEL, inputs, { varianceEpsilon: eps, relu }) as tf.Tensor[];
      onMoments?.(mean as tf.Tensor1D, variance as tf.Tensor1D);
      value = y as tf.Tensor4D;
    } else {
      const { mean, variance } = batchMoments(input);
      onMoments?.(mean, variance);
      value = tf.batchNorm4d(input, mean, variance, offset, scale, eps);
      if (relu) value = tf.relu(value);
    }
    // Only the input is saved: a saved intermediate would outlive this kernel scope, which tfjs's
    // leak check (on under IS_TEST, as segkit runs) rejects. The gradient recomputes the statistics.
    save([input]);
    const gradFunc = (dy: tf.Tensor4D, [savedInput]: tf.Tensor[]): tf.Tensor[] => {
      const [dx, dScale, dOffset] = batchNormGradient(savedInput as tf.Tensor4D, dy, scale, eps, relu ? { offset } : undefined);
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

  /**
   * [N, G, C/G·H·W] through InstanceNormalization (per-sample statistics of each group), back to the
   * input's shape, then the per-channel affine transform.
   */
  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    const g = this.numGroups;
    const grouped = ctx.node('Reshape', [x, ctx.constant([0, g, -1], [3], 'int64')], { shape: [x.shape[0] ?? null, g, null] });
    const ones = ctx.constant(new Array<number>(g).fill(1), [g]);
    const zeros = ctx.constant(new Array<number>(g).fill(0), [g]);
    const normalized = ctx.node('InstanceNormalization', [grouped, ones, zeros], { attributes: { epsilon: ctx.float(this.eps) }, shape: grouped.shape });
    const shape = ctx.node('Shape', [x], { shape: [x.shape.length], dtype: 'int64' });
    const y = ctx.node('Reshape', [normalized, shape], { shape: x.shape });
    if (!this.weight || !this.bias) return y;
    // [C] → [C, 1, 1]: broadcast over H and W of NCHW.
    const perChannel = (name: string, variable: tf.Variable) => ctx.initializer(name, variable, { shape: [this.numFeatures, 1, 1] });
    return ctx.add(ctx.node('Mul', [y, perChannel('weight', this.weight)], { shape: x.shape }), perChannel('bias', this.bias));
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
 * SyncBN is SyncBatchNorm2d: BatchNorm2d on one process, statistics over every rank when data-parallel.
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
    const Norm = type === 'SyncBN' ? SyncBatchNorm2d : BatchNorm2d;
    layer = new Norm(numFeatures, { eps: rest.eps, momentum: rest.momentum, affine: rest.affine });
  }
  layer.requiresGrad(requiresGrad);
  return { name: `${abbreviation}${postfix}`, layer };
}
