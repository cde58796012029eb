import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, z, type ComponentOf, type Loss, type LossCallOptions } from '@segkit/core';

const { version } = require('../../package.json') as { version: string };

/** Options of MyLoss, with MMSegmentation's option names. */
const myLossSchema = z.object({
  loss_weight: z.number().positive({ error: 'expected a positive number' }).default(1.0),
  loss_name: z.string().default('loss_my'),
  ignore_index: z.number().int().default(255),
});
type MyLossOptions = z.infer<typeof myLossSchema>;

/** Lets `defineConfig` complete `type: 'MyLoss'` and its options in users' configs. */
declare module '@segkit/core' {
  interface LossOptionsMap {
    MyLoss: Partial<MyLossOptions>;
  }
}

/**
 * MMSegmentation's tutorial loss: the mean absolute difference between the softmax probabilities
 * and the one-hot labels, over the pixels that are not ignored (per-pixel weights respected).
 */
export class MyLoss implements Loss {
  readonly lossName: string;
  readonly usesPixelWeight = true;

  constructor(private readonly options: MyLossOptions) {
    this.lossName = options.loss_name;
  }

  forward(logits: tf.Tensor, labels: tf.Tensor, call: LossCallOptions = {}): tf.Tensor {
    return tf.tidy(() => {
      const numClasses = logits.shape[logits.rank - 1]!;
      const ignoreIndex = call.ignoreIndex ?? this.options.ignore_index;
      const valid = tf.cast(tf.notEqual(labels, ignoreIndex), 'float32');
      const target = tf.oneHot(tf.cast(tf.mul(labels, tf.cast(valid, 'int32')), 'int32'), numClasses);
      const perPixel = tf.mean(tf.abs(tf.sub(tf.softmax(logits), target)), -1);
      const weighted = tf.mul(tf.mul(perPixel, valid), call.weight ?? 1);
      const reduction = call.reductionOverride ?? 'mean';
      const reduced =
        reduction === 'none' ? weighted : reduction === 'sum' ? tf.sum(weighted) : tf.div(tf.sum(weighted), tf.maximum(tf.sum(valid), 1));
      return tf.mul(reduced, this.options.loss_weight);
    });
  }
}

export const myLossDefinition: ComponentOf<'losses', MyLossOptions, MyLoss> = {
  type: 'MyLoss',
  schema: myLossSchema,
  create: (options) => new MyLoss(options),
  description: 'mean |softmax - one-hot| over non-ignored pixels (example plugin)',
};

export const plugin = definePlugin({
  name: '@segkit/example-custom-loss',
  version,
  components: { losses: [myLossDefinition] },
});
