import * as tf from '@tensorflow/tfjs-core';
import {
  BaseDecodeHead,
  decodeHeadBaseSchema,
  definePlugin,
  nn,
  z,
  type BuildContext,
  type ComponentOf,
  type FeatureExtractor,
  type Loss,
  type LossCallOptions,
  type ParsedDecodeHeadOptions,
} from '../plugin-api';
import { checkLabelRange } from '../losses/labels';
import { createKernel } from '../plugin-system/kernel';
import type { Kernel } from '../plugin-system/kernel';

/** A tiny softmax cross-entropy (mean over all pixels, ignored pixels count 0), enough to train in tests. */
export class TinyCrossEntropy implements Loss {
  readonly lossName = 'loss_ce';
  readonly usesPixelWeight = true;
  constructor(readonly lossWeight: number) {}

  forward(logits: tf.Tensor, labels: tf.Tensor, options: LossCallOptions = {}): tf.Tensor {
    return tf.tidy(() => {
      const ignoreIndex = options.ignoreIndex ?? 255;
      const valid = tf.cast(tf.notEqual(labels, ignoreIndex), 'float32');
      const safeLabels = tf.where(tf.notEqual(labels, ignoreIndex), labels, tf.zerosLike(labels));
      const oneHot = tf.oneHot(tf.cast(safeLabels, 'int32'), logits.shape[3]!);
      const perPixel = tf.mul(tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), oneHot), 3)), valid);
      const weighted = options.weight ? tf.mul(perPixel, options.weight) : perPixel;
      return tf.mul(tf.mean(weighted), this.lossWeight);
    });
  }

  checkLabels(labels: tf.Tensor, numChannels: number, ignoreIndex: number): Promise<void> {
    return checkLabelRange(labels, numChannels, ignoreIndex, `TinyCrossEntropy (weight ${this.lossWeight})`);
  }
}

const tinyCrossEntropy: ComponentOf<'losses'> = {
  type: 'CrossEntropyLoss',
  schema: z.object({ use_sigmoid: z.literal(false).default(false), loss_weight: z.number().default(1) }),
  create: (options: { loss_weight: number }) => new TinyCrossEntropy(options.loss_weight),
};

/** Conv → BN → ReLU, then a 2×2 max-pool: features [x@1/1 (4 ch), x@1/2 (4 ch)]. */
export class ToyBackbone extends nn.Module implements FeatureExtractor {
  readonly stem = this.registerModule('stem', new nn.ConvModule(3, 4, 3, { padding: 1, norm_cfg: { type: 'BN' } }));
  readonly pool = this.registerModule('pool', new nn.MaxPool2d(2));

  override forward(input: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
    const x = this.stem.forward(input as tf.Tensor4D);
    return [x, this.pool.forward(x)];
  }
}

/** A head with one 3×3 ConvModule named `conv` before the base class's dropout and conv_seg. */
export class ToyHead extends BaseDecodeHead {
  readonly conv: nn.ConvModule;

  constructor(options: ParsedDecodeHeadOptions, ctx: BuildContext) {
    super(options, ctx);
    this.conv = this.registerModule('conv', new nn.ConvModule(this.inChannels as number, this.channels, 3, { padding: 1, norm_cfg: this.normCfg, act_cfg: this.actCfg }));
  }

  override forward(features: tf.Tensor[]): tf.Tensor4D {
    return tf.tidy(() => this.clsSeg(this.conv.forward(this.transformInputs(features))));
  }
}

export const toyPlugin = definePlugin({
  name: 'toy-models',
  version: '0.0.0',
  components: {
    losses: [tinyCrossEntropy],
    backbones: [{ type: 'ToyBackbone', schema: z.object({}), create: () => new ToyBackbone() }],
    heads: [{ type: 'ToyHead', schema: decodeHeadBaseSchema, create: (options: ParsedDecodeHeadOptions, ctx: BuildContext) => new ToyHead(options, ctx) }],
  },
});

export function toyKernel(): Promise<Kernel> {
  return createKernel({ plugins: [toyPlugin], backend: 'cpu', logger: { info() {}, warn() {} } });
}

export const TOY_MODEL = {
  type: 'EncoderDecoder',
  backbone: { type: 'ToyBackbone' },
  decode_head: { type: 'ToyHead', in_channels: 4, in_index: 1, channels: 4, num_classes: 3, norm_cfg: { type: 'BN' } },
  auxiliary_head: { type: 'ToyHead', in_channels: 4, in_index: 0, channels: 2, num_classes: 3, loss_decode: { type: 'CrossEntropyLoss', loss_weight: 0.4 } },
};
