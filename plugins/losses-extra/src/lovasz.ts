import * as tf from '@tensorflow/tfjs-core';
import {
  BaseLoss,
  SegkitError,
  checkLabelRange,
  classWeightSchema,
  loadLossClassWeight,
  lossNameSchema,
  lossWeightSchema,
  lossWhere,
  reductionSchema,
  z,
  type ComponentOf,
  type LossCallOptions,
} from '@segkit/core/runtime';

export const lovaszSchema = z.object({
  loss_type: z.enum(['binary', 'multi_class']).default('multi_class'),
  classes: z.union([z.enum(['all', 'present']), z.array(z.number().int().nonnegative()).min(1)], { error: "expected 'all', 'present' or a list of class indices" }).default('present'),
  per_image: z.boolean().default(false),
  reduction: reductionSchema.default('mean'),
  class_weight: classWeightSchema,
  loss_weight: lossWeightSchema,
  loss_name: lossNameSchema('loss_lovasz'),
});
export type LovaszOptions = z.infer<typeof lovaszSchema>;

/**
 * Gradient of the Lovász extension of the Jaccard loss for errors sorted in decreasing order
 * (`gtSorted` = the 0/1 ground truth in that order): Δ of 1 − intersection/union along the prefix.
 */
export function lovaszGrad(gtSorted: readonly number[]): number[] {
  const total = gtSorted.reduce((sum, g) => sum + g, 0);
  const jaccard: number[] = [];
  let cumulativeGt = 0;
  let cumulativeNonGt = 0;
  for (const g of gtSorted) {
    cumulativeGt += g;
    cumulativeNonGt += 1 - g;
    jaccard.push(1 - (total - cumulativeGt) / (total + cumulativeNonGt));
  }
  return jaccard.map((value, i) => (i === 0 ? value : value - jaccard[i - 1]!));
}

/**
 * Per row of `errors` [R, P]: dot(f(valid errors sorted decreasingly), Lovász gradient of the 0/1 ground truth
 * in that order) — `lovaszGrad` computed on the device (no readback). Invalid (ignored) pixels sort after every
 * valid one and contribute nothing, so the valid prefix is exactly the Lovász extension over the valid pixels.
 */
function lovaszRows(errors: tf.Tensor2D, gt: tf.Tensor2D, valid: tf.Tensor2D, transform: (sorted: tf.Tensor) => tf.Tensor = (x) => x): tf.Tensor1D {
  const [rows, pixels] = errors.shape;
  // The sort order and the Lovász weights carry no gradient; inside customGrad the comparisons, top-k and
  // safe divisions stay off the tape, and the gradient of the sorted errors is scattered back through the
  // order. customGrad returns one tensor: [sorted errors, weights] stacked, weights 0 at ignored pixels.
  // Per row: the flat indices of the errors sorted decreasingly (ignored pixels last) and the Lovász weights.
  const orderAndWeights = (errorsInput: tf.Tensor2D): [tf.Tensor1D, tf.Tensor2D] =>
    tf.tidy(() => {
      // tfjs's topk breaks ties toward the lower index, as the stable sort of the reference does.
      const sortKeys = tf.where(tf.cast(valid, 'bool'), errorsInput, tf.fill([rows, pixels], -Infinity));
      const order = tf.reshape(tf.add(tf.topk(sortKeys, pixels).indices, tf.reshape(tf.range(0, rows * pixels, pixels, 'int32'), [rows, 1])), [-1]) as tf.Tensor1D;
      const sorted = (t: tf.Tensor) => tf.reshape(tf.gather(tf.reshape(t, [-1]), order), [rows, pixels]);
      const validSorted = sorted(valid);
      const gtSorted = tf.mul(sorted(gt), validSorted);
      const total = tf.sum(gtSorted, 1, true);
      const jaccard = tf.sub(1, tf.divNoNan(tf.sub(total, tf.cumsum(gtSorted, 1)), tf.add(total, tf.cumsum(tf.sub(validSorted, gtSorted), 1))));
      const steps = pixels === 1 ? jaccard : tf.concat([tf.slice(jaccard, [0, 0], [-1, 1]), tf.sub(tf.slice(jaccard, [0, 1], [-1, -1]), tf.slice(jaccard, [0, 0], [-1, pixels - 1]))], 1);
      return [order, tf.mul(steps, validSorted) as tf.Tensor2D];
    });
  // The order and the weights carry no gradient: inside customGrad the comparisons, top-k and safe divisions
  // stay off the tape, and the gradient of the sorted errors goes back through the order (recomputed from the
  // saved input). customGrad returns one tensor: [sorted errors, weights] stacked, weights 0 at ignored pixels.
  const sortedErrorsAndWeights = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [errorsInput, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([errorsInput]);
    return {
      value: tf.tidy(() => {
        const [order, weights] = orderAndWeights(errorsInput);
        return tf.stack([tf.reshape(tf.gather(tf.reshape(errorsInput, [-1]), order), [rows, pixels]), weights]);
      }),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [order] = orderAndWeights(saved[0] as tf.Tensor2D);
          const dSorted = tf.reshape(tf.slice(dy, [0, 0, 0], [1, -1, -1]), [-1]);
          return [tf.reshape(tf.scatterND(tf.reshape(order, [-1, 1]), dSorted, [rows * pixels]), [rows, pixels])];
        }),
    };
  })(errors);
  const [sortedErrors, weights] = tf.unstack(sortedErrorsAndWeights);
  // Ignored pixels hold finite errors and weight 0.
  const contributions = transform(sortedErrors!);
  const grad = weights!;
  return tf.sum(tf.mul(contributions, grad), 1) as tf.Tensor1D;
}

/**
 * MMSegmentation 0.x `LovaszLoss`: `multi_class` — Lovász-softmax over the classes (`present`, `all`
 * or a list), × class_weight, averaged; `binary` — Lovász hinge on the raw logits of a single-channel
 * head. Over the whole batch, or per image and then reduced (`per_image`). Uses the head's ignore index;
 * ignores pixel weights. With no valid pixel (or no present class) the loss is 0. Runs on the device.
 */
export class LovaszLoss extends BaseLoss<LovaszOptions> {
  readonly usesPixelWeight = false;

  async checkLabels(labels: tf.Tensor, numChannels: number, ignoreIndex: number): Promise<void> {
    await checkLabelRange(labels, numChannels === 1 ? 2 : numChannels, ignoreIndex, this.where);
  }

  forward(logits: tf.Tensor, labels: tf.Tensor, call: LossCallOptions = {}): tf.Tensor {
    const numChannels = this.checkLogits(logits, labels);
    const ignoreIndex = call.ignoreIndex ?? 255;
    const binary = this.options.loss_type === 'binary';
    if (binary && numChannels !== 1) throw new SegkitError(`${this.where}: loss_type 'binary' needs a single-channel head (out_channels: 1), got ${numChannels} channels`);
    if (!binary && numChannels === 1) throw new SegkitError(`${this.where}: loss_type 'multi_class' needs one channel per class; use loss_type 'binary' for a single-channel head`);
    const { classes } = this.options;
    if (Array.isArray(classes) && classes.some((c) => c >= numChannels)) throw new SegkitError(`${this.where}: classes [${classes.join(', ')}] must be below the number of classes ${numChannels}`);
    this.checkClassWeight(numChannels);
    return tf.tidy(() => {
      const batch = labels.shape[0]!;
      // One row per image (per_image) or one row for the whole batch.
      const rows = this.options.per_image ? batch : 1;
      const asRows = (t: tf.Tensor) => tf.reshape(t, [rows, -1]) as tf.Tensor2D;
      const scores = tf.reshape(binary ? logits : tf.softmax(logits), [batch, -1, numChannels]) as tf.Tensor3D;
      const valid = asRows(tf.cast(tf.notEqual(labels, ignoreIndex), 'float32'));
      const perRow = binary ? this.hinge(asRows(scores), asRows(tf.cast(labels, 'float32')), valid) : this.softmaxRows(scores, asRows(labels), valid, numChannels, asRows);
      return this.options.per_image ? this.reduceAndScale(perRow, null, this.reductionOf(call), call.avgFactor) : this.scaled(tf.reshape(perRow, []) as tf.Scalar);
    });
  }

  private hinge(logits: tf.Tensor2D, gt: tf.Tensor2D, valid: tf.Tensor2D): tf.Tensor1D {
    const signs = tf.sub(tf.mul(tf.mul(gt, valid), 2), 1);
    const errors = tf.sub(1, tf.mul(logits, signs)) as tf.Tensor2D;
    return lovaszRows(errors, tf.mul(gt, valid) as tf.Tensor2D, valid, tf.relu);
  }

  private softmaxRows(probs: tf.Tensor3D, labels: tf.Tensor2D, valid: tf.Tensor2D, numClasses: number, asRows: (t: tf.Tensor) => tf.Tensor2D): tf.Tensor1D {
    const { classes } = this.options;
    const classList = Array.isArray(classes) ? classes : [...Array(numClasses).keys()];
    const losses: tf.Tensor1D[] = [];
    const counted: tf.Tensor1D[] = [];
    for (const c of classList) {
      const foreground = tf.mul(tf.cast(tf.equal(labels, c), 'float32'), valid) as tf.Tensor2D;
      const column = asRows(tf.slice(probs, [0, 0, c], [-1, -1, 1]));
      const loss = lovaszRows(tf.abs(tf.sub(foreground, column)) as tf.Tensor2D, foreground, valid);
      // 'present' counts a class in a row only where it has a valid foreground pixel.
      const inRow = classes === 'present' ? (tf.cast(tf.greater(tf.sum(foreground, 1), 0), 'float32') as tf.Tensor1D) : (tf.onesLike(loss) as tf.Tensor1D);
      losses.push(tf.mul(tf.mul(loss, inRow), this.classWeight ? this.classWeight[c]! : 1) as tf.Tensor1D);
      counted.push(inRow);
    }
    // No counted class in a row means every loss there is 0: dividing by max(count, 1) gives 0.
    return tf.div(tf.addN(losses), tf.maximum(tf.addN(counted), 1)) as tf.Tensor1D;
  }
}

export const lovaszDefinition: ComponentOf<'losses', LovaszOptions, LovaszLoss> = {
  type: 'LovaszLoss',
  schema: lovaszSchema,
  description: 'Lovász-softmax / Lovász hinge loss (MMSegmentation 0.x)',
  create(options, ctx) {
    if (!options.per_image && options.reduction !== 'none') {
      throw new SegkitError(`${ctx.path}.reduction: must be 'none' when per_image is false (the loss over the whole batch is already one value), got '${options.reduction}'`, ctx.path);
    }
    return new LovaszLoss(options, loadLossClassWeight(options.class_weight, ctx), lossWhere(ctx, 'LovaszLoss', options.loss_name));
  },
};
