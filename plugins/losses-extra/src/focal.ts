import * as tf from '@tensorflow/tfjs-core';
import {
  BaseLoss,
  SegkitError,
  checkLabelRange,
  checkPerClassList,
  labelsWithIgnoredAsZero,
  loadLossClassWeight,
  lossNameSchema,
  lossWeightSchema,
  lossWhere,
  oneHotTargets,
  reductionSchema,
  validMask,
  z,
  type ComponentOf,
  type LossCallOptions,
} from '@segkit/core/runtime';

export const focalSchema = z.object({
  use_sigmoid: z.literal(true, { error: 'only the sigmoid focal loss exists; expected true' }).default(true),
  gamma: z.number().default(2.0),
  alpha: z.union([z.number(), z.array(z.number())], { error: 'expected a number or one number per class' }).default(0.5),
  reduction: reductionSchema.default('mean'),
  // 0.x FocalLoss takes a list only (no file loading).
  class_weight: z.array(z.number(), { error: 'expected a list of numbers' }).nullable().default(null),
  loss_weight: lossWeightSchema,
  loss_name: lossNameSchema('loss_focal'),
});
export type FocalOptions = z.infer<typeof focalSchema>;

/**
 * MMSegmentation 0.x sigmoid `FocalLoss`: per class c, BCE(x, t)·(α·t + (1−α)(1−t))·|t − σ(x)|^γ with
 * one-hot targets, weighted by class_weight and the valid mask, reduced over all N·H·W·C elements.
 * A per-pixel weight [N,H,W] is broadcast over the classes (0.x rejects it).
 */
export class FocalLoss extends BaseLoss<FocalOptions> {
  readonly usesPixelWeight = true;

  /** 0.x FocalLoss takes `class_weight` as a list only, so the options hold the weights. */
  constructor(options: FocalOptions, where?: string) {
    super(options, options.class_weight, where);
  }

  async checkLabels(labels: tf.Tensor, numChannels: number, ignoreIndex: number): Promise<void> {
    // A single-channel head predicts class 1 against 0.
    await checkLabelRange(labels, numChannels === 1 ? 2 : numChannels, ignoreIndex, this.where);
  }

  forward(logits: tf.Tensor, labels: tf.Tensor, call: LossCallOptions = {}): tf.Tensor {
    const numChannels = this.checkLogits(logits, labels);
    const ignoreIndex = call.ignoreIndex ?? 255;
    const { alpha, gamma } = this.options;
    checkPerClassList('alpha', Array.isArray(alpha) ? alpha : null, numChannels, this.where);
    this.checkClassWeight(numChannels);
    return tf.tidy(() => {
      const safe = labelsWithIgnoredAsZero(labels, ignoreIndex);
      const valid = tf.expandDims(validMask(labels, ignoreIndex), -1);
      const target = numChannels === 1 ? tf.expandDims(tf.cast(tf.equal(safe, 1), 'float32'), -1) : oneHotTargets(safe, numChannels);
      const alphaT = Array.isArray(alpha) ? tf.tensor1d(alpha) : tf.scalar(alpha as number);
      const bce = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, target)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
      const focalWeight = tf.mul(tf.add(tf.mul(alphaT, target), tf.mul(tf.sub(1, alphaT), tf.sub(1, target))), tf.pow(tf.abs(tf.sub(target, tf.sigmoid(logits))), gamma));
      let weight = valid;
      if (this.classWeight) weight = tf.mul(weight, tf.tensor1d([...this.classWeight]));
      if (call.weight) weight = tf.mul(weight, tf.expandDims(call.weight, -1));
      return this.reduceAndScale(tf.mul(bce, focalWeight), weight, this.reductionOf(call), call.avgFactor);
    });
  }
}

export const focalDefinition: ComponentOf<'losses', FocalOptions, FocalLoss> = {
  type: 'FocalLoss',
  schema: focalSchema,
  description: 'sigmoid focal loss with gamma, alpha and class_weight (MMSegmentation 0.x)',
  create(options, ctx) {
    const { numClasses } = ctx.parent;
    loadLossClassWeight(options.class_weight, ctx);
    if (Array.isArray(options.alpha) && numClasses !== undefined && options.alpha.length !== numClasses) {
      throw new SegkitError(`${ctx.path}.alpha: expected one alpha per class (${numClasses}), got ${options.alpha.length}`, ctx.path);
    }
    return new FocalLoss(options, lossWhere(ctx, 'FocalLoss', options.loss_name));
  },
};
