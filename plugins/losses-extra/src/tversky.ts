import * as tf from '@tensorflow/tfjs-core';
import {
  BaseLoss,
  SegkitError,
  classWeightSchema,
  combineClassLosses,
  ignoreIndexSchema,
  loadLossClassWeight,
  lossNameSchema,
  lossWeightSchema,
  lossWhere,
  softmaxRegionInputs,
  z,
  type ComponentOf,
} from '@segkit/core/runtime';

export const tverskySchema = z.object({
  smooth: z.number().default(1),
  class_weight: classWeightSchema,
  loss_weight: lossWeightSchema,
  ignore_index: ignoreIndexSchema,
  alpha: z.number().default(0.3),
  beta: z.number().default(0.7),
  gamma: z.number().gte(1, { error: 'gamma should be at least 1.0' }).default(1.0),
  loss_name: lossNameSchema('loss_tversky'),
});
export type TverskyOptions = z.infer<typeof tverskySchema>;

/**
 * MMSegmentation `TverskyLoss` (v0.28+): softmax; per class c and image n, with t the one-hot of the
 * labels clamped to [0, C−1] and `valid` from the loss's own ignore_index,
 * T = (TP + smooth)/(TP + α·FP + β·FN + smooth), loss (1 − T)^(1/γ); mean over images, × class_weight,
 * summed over classes (skipping the class equal to ignore_index) and divided by C. Always a scalar;
 * ignores pixel weights and the reduction arguments.
 */
export class TverskyLoss extends BaseLoss<TverskyOptions> {
  readonly usesPixelWeight = false;

  forward(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
    this.checkClassWeight(this.checkLogits(logits, labels));
    const { smooth, alpha, beta, gamma, ignore_index: ignoreIndex } = this.options;
    return tf.tidy(() => {
      const { probs, target, valid } = softmaxRegionInputs(logits, labels, ignoreIndex);
      const imageAxes = [...Array(logits.rank - 2).keys()].map((axis) => axis + 1);
      const sumValid = (x: tf.Tensor) => tf.sum(tf.mul(x, valid), imageAxes);
      const truePositive = sumValid(tf.mul(probs, target));
      const falsePositive = sumValid(tf.mul(probs, tf.sub(1, target)));
      const falseNegative = sumValid(tf.mul(tf.sub(1, probs), target));
      const tversky = tf.div(tf.add(truePositive, smooth), tf.add(tf.add(tf.add(truePositive, tf.mul(falsePositive, alpha)), tf.mul(falseNegative, beta)), smooth));
      const perImageClass = tf.pow(tf.sub(1, tversky), 1 / gamma);
      return this.scaled(combineClassLosses(perImageClass, this.classWeight, ignoreIndex));
    });
  }
}

export const tverskyDefinition: ComponentOf<'losses', TverskyOptions, TverskyLoss> = {
  type: 'TverskyLoss',
  schema: tverskySchema,
  description: 'softmax per-class Tversky loss with alpha, beta, gamma (MMSegmentation 0.x)',
  create(options, ctx) {
    // 0.x asserts exact float equality; 0.3 + 0.7 is exactly 1 in doubles.
    if (options.alpha + options.beta !== 1.0) {
      throw new SegkitError(`${ctx.path}: alpha + beta must be 1.0, got ${options.alpha} + ${options.beta} = ${options.alpha + options.beta}`, ctx.path);
    }
    return new TverskyLoss(options, loadLossClassWeight(options.class_weight, ctx), lossWhere(ctx, 'TverskyLoss', options.loss_name));
  },
};
