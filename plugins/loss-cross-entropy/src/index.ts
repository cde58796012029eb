import * as tf from '@tensorflow/tfjs-core';
import {
  BaseLoss,
  SegkitError,
  checkLabelRange,
  classWeightSchema,
  definePlugin,
  type LossParent,
  labelsWithIgnoredAsZero,
  loadClassWeight,
  loadLossClassWeight,
  lossNameSchema,
  lossWeightSchema,
  lossWhere,
  oneHotTargets,
  reductionSchema,
  validMask,
  z,
  type BuildContext,
  type ComponentOf,
  type LossCallOptions,
  type Reduction,
} from '@segkit/core/runtime';

const { version } = require('../../package.json') as { version: string };

/** PyTorch's `F.cross_entropy` default, used when the caller passes no ignore index. */
const TORCH_IGNORE_INDEX = -100;

export const crossEntropySchema = z.object({
  use_sigmoid: z.boolean().default(false),
  use_mask: z.boolean().default(false),
  reduction: reductionSchema.default('mean'),
  class_weight: classWeightSchema,
  loss_weight: lossWeightSchema,
  loss_name: lossNameSchema('loss_ce'),
  avg_non_ignore: z.boolean().default(false),
});
export type CrossEntropyOptions = z.infer<typeof crossEntropySchema>;

declare module '@segkit/core' {
  interface LossOptionsMap {
    CrossEntropyLoss: Partial<z.input<typeof crossEntropySchema>>;
  }
}

/**
 * MMSegmentation 0.x `CrossEntropyLoss` on NHWC logits. Softmax path: per-pixel −log p[label] ×
 * class_weight[label], 0 at ignored pixels; sigmoid path: binary CE with logits against one-hot targets
 * (or the labels themselves for a single-channel head), class_weight as the positive-example weight.
 * The 0.x mean divides by the pixel count (or the non-ignored count with `avg_non_ignore`), never by
 * the sum of class weights.
 */
export class CrossEntropyLoss extends BaseLoss<CrossEntropyOptions> {
  readonly usesPixelWeight = true;

  /** Labels in [0, C) or the ignore index; a single-channel sigmoid head takes 0 and 1. */
  async checkLabels(labels: tf.Tensor, numChannels: number, ignoreIndex: number): Promise<void> {
    const binary = this.options.use_sigmoid && numChannels === 1;
    await checkLabelRange(labels, binary ? 2 : numChannels, ignoreIndex, binary ? `${this.where} (sigmoid, single channel: at most 2 classes)` : this.where);
  }

  forward(logits: tf.Tensor, labels: tf.Tensor, call: LossCallOptions = {}): tf.Tensor {
    const reduction = this.reductionOf(call);
    const ignoreIndex = call.ignoreIndex ?? TORCH_IGNORE_INDEX;
    const numChannels = this.checkLogits(logits, labels);
    if (this.options.use_sigmoid) return this.sigmoidForward(logits, labels, call, reduction, ignoreIndex, numChannels);
    this.checkClassWeight(numChannels);
    return tf.tidy(() => {
      const safeLabels = labelsWithIgnoredAsZero(labels, ignoreIndex);
      const valid = validMask(labels, ignoreIndex);
      const oneHot = oneHotTargets(safeLabels, numChannels);
      let perPixel = tf.mul(tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), oneHot), -1)), valid);
      if (this.classWeight) perPixel = tf.mul(perPixel, tf.gather(tf.tensor1d([...this.classWeight]), safeLabels));
      const avgFactor = call.avgFactor ?? (this.options.avg_non_ignore && reduction === 'mean' ? tf.sum<tf.Scalar>(valid) : undefined);
      return this.reduceAndScale(perPixel, call.weight, reduction, avgFactor);
    });
  }

  private sigmoidForward(logits: tf.Tensor, labels: tf.Tensor, call: LossCallOptions, reduction: Reduction, ignoreIndex: number, numChannels: number): tf.Tensor {
    const binary = numChannels === 1;
    if (this.classWeight && this.classWeight.length !== numChannels && this.classWeight.length !== 1) {
      throw new SegkitError(`${this.where}: with use_sigmoid, class_weight is the positive-example weight per output channel: expected ${numChannels} (or 1) entries, got ${this.classWeight.length}`);
    }
    return tf.tidy(() => {
      // Validity as in 0.x: label >= 0 and not the ignore index.
      const valid = tf.mul(validMask(labels, ignoreIndex), tf.cast(tf.greaterEqual(labels, 0), 'float32'));
      const safeLabels = labelsWithIgnoredAsZero(tf.where(tf.less(labels, 0), tf.fill(labels.shape, ignoreIndex, 'int32'), tf.cast(labels, 'int32')), ignoreIndex);
      let pred: tf.Tensor;
      let target: tf.Tensor;
      let elementMask: tf.Tensor;
      let pixelWeight = call.weight;
      if (binary) {
        pred = tf.reshape(logits, labels.shape);
        target = tf.mul(tf.cast(safeLabels, 'float32'), valid);
        elementMask = valid;
      } else {
        pred = logits;
        target = tf.mul(oneHotTargets(safeLabels, numChannels), tf.expandDims(valid, -1));
        elementMask = tf.tile(tf.expandDims(valid, -1), [...labels.shape.map(() => 1), numChannels]);
        if (pixelWeight) pixelWeight = tf.expandDims(pixelWeight, -1);
      }
      const elementWeight = pixelWeight ? tf.mul(elementMask, pixelWeight) : elementMask;
      const elementLoss = binaryCrossEntropyWithLogits(pred, target, this.classWeight);
      const avgFactor = call.avgFactor ?? (this.options.avg_non_ignore && reduction === 'mean' ? tf.sum<tf.Scalar>(elementMask) : undefined);
      return this.reduceAndScale(elementLoss, elementWeight, reduction, avgFactor);
    });
  }
}

/**
 * PyTorch's `binary_cross_entropy_with_logits` with `pos_weight` (broadcast along the last axis):
 * (1 − t)·x + (1 + (pw − 1)·t)·(log(1 + e^−|x|) + max(−x, 0)), stable for large |x|.
 */
export function binaryCrossEntropyWithLogits(pred: tf.Tensor, target: tf.Tensor, posWeight: readonly number[] | null): tf.Tensor {
  return tf.tidy(() => {
    const logSigmoidNeg = tf.add(tf.log1p(tf.exp(tf.neg(tf.abs(pred)))), tf.relu(tf.neg(pred))); // −log σ(x)
    const positiveFactor = posWeight ? tf.add(1, tf.mul(tf.sub(tf.tensor1d([...posWeight]), 1), target)) : 1;
    return tf.add(tf.mul(tf.sub(1, target), pred), tf.mul(positiveFactor, logSigmoidNeg));
  });
}

export const crossEntropyDefinition: ComponentOf<'losses', CrossEntropyOptions, CrossEntropyLoss> = {
  type: 'CrossEntropyLoss',
  schema: crossEntropySchema,
  description: 'softmax/sigmoid cross-entropy with class weights, avg_non_ignore and pixel weights (MMSegmentation 0.x)',
  create(options, ctx: BuildContext<LossParent>) {
    if (options.use_sigmoid && options.use_mask) throw new SegkitError(`${ctx.path}: use_sigmoid and use_mask cannot both be true`, ctx.path);
    if (options.use_mask) {
      throw new SegkitError(`${ctx.path}.use_mask: the mask cross-entropy needs per-instance labels that segmentation heads never pass; use use_sigmoid or the default softmax`, ctx.path);
    }
    const { numClasses, head } = ctx.parent;
    const classWeightPath = `${ctx.path}.class_weight`;
    let classWeight: number[] | null;
    if (options.use_sigmoid) {
      // The sigmoid path's weight is per output channel: a single-channel head takes one entry.
      classWeight = loadClassWeight(options.class_weight, { path: classWeightPath, configDir: ctx.configDir });
      if (classWeight && numClasses !== undefined && classWeight.length !== numClasses && classWeight.length !== 1) {
        throw new SegkitError(`${classWeightPath}: expected ${numClasses} class weights (num_classes) or 1 for a single-channel head, got ${classWeight.length}`, classWeightPath);
      }
    } else {
      classWeight = loadLossClassWeight(options.class_weight, ctx);
    }
    if (!options.avg_non_ignore && options.reduction === 'mean') {
      ctx.warn(
        `${ctx.path}${head ? ` (head ${head})` : ''}: CrossEntropyLoss has avg_non_ignore: false, so the mean also counts ignored pixels in its denominator (MMSegmentation's default); set avg_non_ignore: true to average over non-ignored pixels only, as PyTorch's cross_entropy does`,
      );
    }
    return new CrossEntropyLoss(options, classWeight, lossWhere(ctx, 'CrossEntropyLoss', options.loss_name));
  },
};

export const plugin = definePlugin({
  name: '@segkit/loss-cross-entropy',
  version,
  components: { losses: [crossEntropyDefinition] },
});
