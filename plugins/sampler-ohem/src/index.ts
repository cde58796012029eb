import * as tf from '@tensorflow/tfjs-core';
import { SegkitError, definePlugin, sumTensors, z, type ComponentOf, type PixelSampler, type SamplerContext } from '@segkit/core/runtime';

const { version } = require('../../package.json') as { version: string };

export const ohemSchema = z.object({
  thresh: z
    .number({ error: 'expected a probability in (0, 1) or null' })
    .gt(0, { error: 'expected a probability in (0, 1) or null' })
    .lt(1, { error: 'expected a probability in (0, 1) or null' })
    .nullable()
    .default(null),
  min_kept: z.number().int({ error: 'expected an integer > 1' }).gt(1, { error: 'expected an integer > 1' }).default(100000),
});
export type OhemOptions = z.infer<typeof ohemSchema>;

declare module '@segkit/core' {
  interface SamplerOptionsMap {
    OHEMPixelSampler: Partial<z.input<typeof ohemSchema>>;
  }
}

/**
 * MMSegmentation's `OHEMPixelSampler`. The budget `min_kept × N` is pooled over the batch.
 * - probability mode (`thresh` set): keep every valid pixel whose ground-truth probability is strictly
 *   below max(thresh, the k-th smallest such probability), k = min(budget, valid − 1);
 * - loss mode: keep the min(budget, valid) valid pixels with the largest summed per-pixel loss.
 * Ignored pixels are never kept. Returns a float32 [N,H,W] map of 0/1 that carries no gradient.
 */
export class OHEMPixelSampler implements PixelSampler {
  constructor(
    readonly options: OhemOptions,
    private readonly where = 'OHEMPixelSampler',
  ) {}

  sample(logits: tf.Tensor, labels: tf.Tensor, context: SamplerContext): tf.Tensor {
    const [batch, height, width, numChannels] = logits.shape as [number, number, number, number];
    if (logits.rank !== 4 || labels.rank !== 3 || labels.shape[0] !== batch || labels.shape[1] !== height || labels.shape[2] !== width) {
      throw new SegkitError(`${this.where}: expected logits [N,H,W,C] resized to the labels [N,H,W], got [${logits.shape.join(',')}] and [${labels.shape.join(',')}]`);
    }
    const budget = this.options.min_kept * batch;
    if (this.options.thresh !== null && numChannels === 1) {
      throw new SegkitError(
        `${this.where}: probability mode (thresh) needs softmax logits with one channel per class, but the head has a single output channel (out_channels: 1); remove thresh to rank pixels by loss instead`,
      );
    }
    // All on the device (no readback): every backend, GPU ones included, runs the same selection. Inside
    // customGrad the selection ops stay off the gradient tape (comparisons and top-k have no gradient); the
    // map carries none.
    const select = tf.customGrad((logitsInput, labelsInput) => ({
      value: this.select(logitsInput as tf.Tensor4D, labelsInput as tf.Tensor3D, context, budget),
      gradFunc: () => [tf.zerosLike(logitsInput as tf.Tensor), tf.zerosLike(labelsInput as tf.Tensor)],
    }));
    return select(logits, labels);
  }

  private select(logits: tf.Tensor4D, labels: tf.Tensor3D, context: SamplerContext, budget: number): tf.Tensor {
    const [batch, height, width] = labels.shape;
    return tf.tidy(() => {
      const total = batch * height * width;
      const valid = tf.reshape(tf.notEqual(labels, context.ignoreIndex), [total]);
      let keep: tf.Tensor;
      if (this.options.thresh !== null) {
        const probs = tf.reshape(this.groundTruthProbabilities(logits, labels, context.ignoreIndex), [total]);
        // The (budget + 1) smallest valid probabilities, ascending; ignored pixels sort last (2 > any probability).
        const count = Math.min(budget + 1, total);
        const smallest = tf.neg(tf.topk(tf.neg(tf.where(valid, probs, tf.scalar(2))), count).values);
        // k = min(budget, valid − 1); with no valid pixel nothing is kept whatever the threshold.
        const validCount = tf.sum(tf.cast(valid, 'int32'));
        const k = tf.clipByValue(tf.minimum(tf.scalar(budget, 'int32'), tf.sub(validCount, tf.scalar(1, 'int32'))), 0, count - 1);
        // PyTorch compares float32 probabilities with thresh cast to float32.
        const threshold = tf.maximum(tf.gather(smallest, k), tf.scalar(Math.fround(this.options.thresh)));
        keep = tf.logicalAnd(valid, tf.less(probs, threshold));
      } else {
        // The min(budget, valid) valid pixels of largest loss; tfjs's topk breaks ties towards the
        // lower index, so among equal losses the earlier pixel (row-major n, h, w) is kept first.
        const ranked = tf.where(valid, tf.reshape(this.perPixelLoss(logits, labels, context), [total]), tf.scalar(-Infinity));
        const count = Math.min(budget, total);
        const hardest = tf.topk(ranked, count).indices;
        const chosen = tf.scatterND(tf.reshape(hardest, [count, 1]), tf.ones([count], 'int32'), [total]);
        keep = tf.logicalAnd(valid, tf.cast(chosen, 'bool'));
      }
      return tf.reshape(tf.cast(keep, 'float32'), [batch, height, width]);
    });
  }

  private groundTruthProbabilities(logits: tf.Tensor, labels: tf.Tensor, ignoreIndex: number): tf.Tensor {
    return tf.tidy(() => {
      const numClasses = logits.shape[3]!;
      // Ignored pixels index class 0; they are never kept anyway.
      const safe = tf.where(tf.equal(labels, ignoreIndex), tf.zerosLike(labels), tf.cast(labels, 'int32'));
      const inRange = tf.clipByValue(tf.cast(safe, 'int32'), 0, numClasses - 1);
      return tf.sum(tf.mul(tf.softmax(logits), tf.cast(tf.oneHot(inRange, numClasses), 'float32')), -1);
    });
  }

  /** The summed per-pixel loss of the head's losses, [N,H,W] (disposed by the caller's tidy). */
  private perPixelLoss(logits: tf.Tensor, labels: tf.Tensor, context: SamplerContext): tf.Tensor {
    if (context.lossDecode.length === 0) throw new SegkitError(`${this.where}: loss mode (no thresh) needs the head's losses, got none`);
    return tf.tidy(() => {
      const perLoss = context.lossDecode.map((loss) => {
        const value = loss.forward(logits, labels, { ignoreIndex: context.ignoreIndex, reductionOverride: 'none' });
        if (value.rank !== 3 || value.shape.some((size, axis) => size !== labels.shape[axis])) {
          throw new SegkitError(
            `${this.where}: loss mode ranks pixels by loss, but '${loss.lossName}' (${loss.constructor?.name ?? 'loss'}) returns shape [${value.shape.join(',')}] with reduction 'none' instead of per-pixel [${labels.shape.join(',')}]; set thresh (probability mode) or use per-pixel losses such as CrossEntropyLoss`,
          );
        }
        return value;
      });
      return sumTensors(perLoss);
    });
  }
}

export const ohemDefinition: ComponentOf<'samplers', OhemOptions, OHEMPixelSampler> = {
  type: 'OHEMPixelSampler',
  schema: ohemSchema,
  description: 'online hard example mining: keeps the hardest pixels by probability (thresh) or by loss (MMSegmentation)',
  create: (options, ctx) => new OHEMPixelSampler(options, `${ctx.path} (OHEMPixelSampler)`),
};

export const plugin = definePlugin({
  name: '@segkit/sampler-ohem',
  version,
  components: { samplers: [ohemDefinition] },
});
