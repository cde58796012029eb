import * as tf from '@tensorflow/tfjs-core';
import {
  BaseLoss,
  classWeightSchema,
  combineClassLosses,
  definePlugin,
  ignoreIndexSchema,
  loadLossClassWeight,
  lossNameSchema,
  lossWeightSchema,
  lossWhere,
  reductionSchema,
  softmaxRegionInputs,
  z,
  type ComponentOf,
  type LossCallOptions,
} from '@segkit/core/runtime';

const { version } = require('../../package.json') as { version: string };

export const diceSchema = z.object({
  smooth: z.number().default(1),
  exponent: z.number().default(2),
  reduction: reductionSchema.default('mean'),
  class_weight: classWeightSchema,
  loss_weight: lossWeightSchema,
  ignore_index: ignoreIndexSchema,
  loss_name: lossNameSchema('loss_dice'),
});
export type DiceOptions = z.infer<typeof diceSchema>;

declare module '@segkit/core' {
  interface LossOptionsMap {
    DiceLoss: Partial<z.input<typeof diceSchema>>;
  }
}

/**
 * MMSegmentation 0.x `DiceLoss`: softmax, then per class c and image n
 * `1 − (2·Σ p·t·valid + smooth) / (Σ (p^exponent + t^exponent) + smooth)` (the denominator is not
 * masked, as in 0.x), averaged over images, × class_weight[c], summed over classes (skipping the class
 * equal to the loss's own `ignore_index`) and divided by C. Uses its own `ignore_index`, not the head's,
 * and ignores pixel weights; every reduction returns a scalar.
 */
export class DiceLoss extends BaseLoss<DiceOptions> {
  readonly usesPixelWeight = false;

  forward(logits: tf.Tensor, labels: tf.Tensor, call: LossCallOptions = {}): tf.Tensor {
    this.checkClassWeight(this.checkLogits(logits, labels));
    const { smooth, exponent, ignore_index: ignoreIndex } = this.options;
    return tf.tidy(() => {
      const { probs, target, valid } = softmaxRegionInputs(logits, labels, ignoreIndex);
      const imageAxes = [...Array(logits.rank - 2).keys()].map((axis) => axis + 1); // H, W
      const numerator = tf.add(tf.mul(tf.sum(tf.mul(tf.mul(probs, target), valid), imageAxes), 2), smooth);
      // x² as a product (the default exponent): tfjs's Pow has no fast kernel on segkit's backends.
      const power = (x: tf.Tensor) => (exponent === 2 ? tf.square(x) : tf.pow(x, exponent));
      const denominator = tf.add(tf.sum(tf.add(power(probs), power(target)), imageAxes), smooth);
      const perImageClass = tf.sub(1, tf.div(numerator, denominator));
      const loss = combineClassLosses(perImageClass, this.classWeight, ignoreIndex);
      return this.reduceAndScale(loss, null, this.reductionOf(call), call.avgFactor);
    });
  }
}

export const diceDefinition: ComponentOf<'losses', DiceOptions, DiceLoss> = {
  type: 'DiceLoss',
  schema: diceSchema,
  description: 'softmax per-class Dice loss with smooth, exponent and class_weight (MMSegmentation 0.x)',
  create(options, ctx) {
    return new DiceLoss(options, loadLossClassWeight(options.class_weight, ctx), lossWhere(ctx, 'DiceLoss', options.loss_name));
  },
};

export const plugin = definePlugin({
  name: '@segkit/loss-dice',
  version,
  components: { losses: [diceDefinition] },
});
