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

/** dot(f(errors sorted decreasingly), lovaszGrad(gt in that order)); `errors` is 1-D. */
function lovaszDot(errors: tf.Tensor1D, gt: readonly number[], transform: (sorted: tf.Tensor) => tf.Tensor = (x) => x): tf.Scalar {
  const values = errors.dataSync();
  // Ties do not change the value of the Lovász extension; the stable order keeps results reproducible.
  const order = Array.from(values.keys()).sort((a, b) => values[b]! - values[a]!);
  const grad = lovaszGrad(order.map((i) => gt[i]!));
  return tf.sum(tf.mul(transform(tf.gather(errors, tf.tensor1d(order, 'int32'))), tf.tensor1d(grad))) as tf.Scalar;
}

/**
 * MMSegmentation 0.x `LovaszLoss`: `multi_class` — Lovász-softmax over the classes (`present`, `all`
 * or a list), × class_weight, averaged; `binary` — Lovász hinge on the raw logits of a single-channel
 * head. Over the whole batch, or per image and then reduced (`per_image`). Uses the head's ignore index;
 * ignores pixel weights. With no valid pixel (or no present class) the loss is 0.
 */
export class LovaszLoss extends BaseLoss<LovaszOptions> {
  readonly usesPixelWeight = false;

  forward(logits: tf.Tensor, labels: tf.Tensor, call: LossCallOptions = {}): tf.Tensor {
    const numChannels = this.checkLogits(logits, labels);
    const ignoreIndex = call.ignoreIndex ?? 255;
    const binary = this.options.loss_type === 'binary';
    if (binary && numChannels !== 1) throw new SegkitError(`${this.where}: loss_type 'binary' needs a single-channel head (out_channels: 1), got ${numChannels} channels`);
    if (!binary && numChannels === 1) throw new SegkitError(`${this.where}: loss_type 'multi_class' needs one channel per class; use loss_type 'binary' for a single-channel head`);
    const { classes } = this.options;
    if (Array.isArray(classes) && classes.some((c) => c >= numChannels)) throw new SegkitError(`${this.where}: classes [${classes.join(', ')}] must be below the number of classes ${numChannels}`);
    this.checkClassWeight(numChannels);
    checkLabelRange(labels, binary ? 2 : numChannels, ignoreIndex, this.where);
    const labelValues = Array.from(labels.dataSync());
    return tf.tidy(() => {
      const scores = tf.reshape(binary ? logits : tf.softmax(logits), [labels.shape[0]!, -1, numChannels]) as tf.Tensor3D;
      const pixelsPerImage = scores.shape[1];
      const flatLoss = (images: number[]): tf.Scalar => {
        const rows: number[] = [];
        const gt: number[] = [];
        for (const n of images) {
          for (let p = 0; p < pixelsPerImage; p++) {
            const label = labelValues[n * pixelsPerImage + p]!;
            if (label !== ignoreIndex) {
              rows.push(n * pixelsPerImage + p);
              gt.push(label);
            }
          }
        }
        const valid = tf.gather(tf.reshape(scores, [-1, numChannels]), tf.tensor1d(rows, 'int32')) as tf.Tensor2D;
        if (rows.length === 0) return tf.mul(tf.sum(valid), 0) as tf.Scalar;
        return binary ? this.hinge(valid, gt) : this.softmaxFlat(valid, gt, numChannels);
      };
      const imageIndices = [...Array(labels.shape[0]!).keys()];
      return this.options.per_image
        ? this.reduceAndScale(tf.stack(imageIndices.map((n) => flatLoss([n]))), null, this.reductionOf(call), call.avgFactor)
        : this.scaled(flatLoss(imageIndices));
    });
  }

  private hinge(logits: tf.Tensor2D, gt: number[]): tf.Scalar {
    const signs = tf.tensor1d(gt.map((g) => 2 * g - 1));
    const errors = tf.sub(1, tf.mul(tf.reshape(logits, [-1]), signs)) as tf.Tensor1D;
    return lovaszDot(errors, gt, tf.relu);
  }

  private softmaxFlat(probs: tf.Tensor2D, gt: number[], numClasses: number): tf.Scalar {
    const { classes } = this.options;
    const classList = Array.isArray(classes) ? classes : [...Array(numClasses).keys()];
    const perClass: tf.Scalar[] = [];
    for (const c of classList) {
      const foreground = gt.map((g) => (g === c ? 1 : 0));
      if (classes === 'present' && !foreground.includes(1)) continue;
      const column = tf.reshape(tf.slice(probs, [0, c], [-1, 1]), [-1]);
      const errors = tf.abs(tf.sub(tf.tensor1d(foreground), column)) as tf.Tensor1D;
      const loss = lovaszDot(errors, foreground);
      perClass.push(this.classWeight ? (tf.mul(loss, this.classWeight[c]!) as tf.Scalar) : loss);
    }
    return perClass.length === 0 ? (tf.mul(tf.sum(probs), 0) as tf.Scalar) : (tf.mean(tf.stack(perClass)) as tf.Scalar);
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
