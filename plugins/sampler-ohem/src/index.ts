import * as tf from '@tensorflow/tfjs-core';
import { SegkitError, definePlugin, z, type ComponentOf, type PixelSampler, type SamplerContext } from '@segkit/core/runtime';

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
    const labelValues = labels.dataSync();
    const valid: number[] = [];
    for (let i = 0; i < labelValues.length; i++) if (labelValues[i] !== context.ignoreIndex) valid.push(i);
    const keep = new Float32Array(labelValues.length);
    if (this.options.thresh !== null) {
      if (numChannels === 1) {
        throw new SegkitError(
          `${this.where}: probability mode (thresh) needs softmax logits with one channel per class, but the head has a single output channel (out_channels: 1); remove thresh to rank pixels by loss instead`,
        );
      }
      const probs = this.groundTruthProbabilities(logits, labels, context.ignoreIndex);
      const sorted = Float32Array.from(valid, (i) => probs[i]!).sort();
      const minThreshold = sorted.length > 0 ? sorted[Math.min(budget, sorted.length - 1)]! : 0;
      // PyTorch compares float32 probabilities with thresh cast to float32.
      const threshold = Math.max(minThreshold, Math.fround(this.options.thresh));
      for (const i of valid) if (probs[i]! < threshold) keep[i] = 1;
    } else {
      const losses = this.perPixelLoss(logits, labels, context);
      // Stable sort: among equal losses the earlier pixel (row-major n, h, w) is kept first.
      const hardest = [...valid].sort((a, b) => losses[b]! - losses[a]!).slice(0, budget);
      for (const i of hardest) keep[i] = 1;
    }
    return tf.tensor3d(keep, [batch, height, width], 'float32');
  }

  private groundTruthProbabilities(logits: tf.Tensor, labels: tf.Tensor, ignoreIndex: number): Float32Array {
    const probs = tf.tidy(() => {
      const numClasses = logits.shape[3]!;
      // Ignored pixels index class 0; they are never kept anyway.
      const safe = tf.where(tf.equal(labels, ignoreIndex), tf.zerosLike(labels), tf.cast(labels, 'int32'));
      const inRange = tf.clipByValue(tf.cast(safe, 'int32'), 0, numClasses - 1);
      return tf.sum(tf.mul(tf.softmax(logits), tf.cast(tf.oneHot(inRange, numClasses), 'float32')), -1);
    });
    const values = probs.dataSync() as Float32Array;
    probs.dispose();
    return values;
  }

  private perPixelLoss(logits: tf.Tensor, labels: tf.Tensor, context: SamplerContext): Float32Array {
    if (context.lossDecode.length === 0) throw new SegkitError(`${this.where}: loss mode (no thresh) needs the head's losses, got none`);
    const total = tf.tidy(() => {
      const perLoss = context.lossDecode.map((loss) => {
        const value = loss.forward(logits, labels, { ignoreIndex: context.ignoreIndex, reductionOverride: 'none' });
        if (value.rank !== 3 || value.shape.some((size, axis) => size !== labels.shape[axis])) {
          throw new SegkitError(
            `${this.where}: loss mode ranks pixels by loss, but '${loss.lossName}' (${loss.constructor?.name ?? 'loss'}) returns shape [${value.shape.join(',')}] with reduction 'none' instead of per-pixel [${labels.shape.join(',')}]; set thresh (probability mode) or use per-pixel losses such as CrossEntropyLoss`,
          );
        }
        return value;
      });
      return perLoss.length === 1 ? perLoss[0]! : tf.addN(perLoss);
    });
    const values = total.dataSync() as Float32Array;
    total.dispose();
    return values;
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
