import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Module, ModuleList, resize } from '../nn';
import { SegkitError } from '../errors';
import type { BuildContext, ComponentOf } from '../plugin-system/registries';
import type { DecodeHead, FeatureExtractor, InferenceOptions, Segmentor } from '../components';
import { componentConfigSchema } from './decode-head';
import { slideInference } from './inference';
import { describeValue, formatValue } from '../config/validation';
import type { OnnxExportContext, OnnxValue } from '../export/onnx/types';

const sizePair = z.tuple([z.number().int().positive(), z.number().int().positive()]);

export const encoderDecoderSchema = z.object({
  backbone: componentConfigSchema,
  neck: componentConfigSchema.nullable().default(null),
  decode_head: componentConfigSchema,
  auxiliary_head: z.union([componentConfigSchema, z.array(componentConfigSchema)]).nullable().default(null),
  train_cfg: z.record(z.string(), z.unknown()).default({}),
  test_cfg: z
    .strictObject({ mode: z.enum(['whole', 'slide']).default('whole'), crop_size: sizePair.optional(), stride: sizePair.optional() })
    .default({ mode: 'whole' }),
  pretrained: z.string().nullable().default(null),
  init_cfg: z.unknown().optional(),
});

export type EncoderDecoderOptions = z.output<typeof encoderDecoderSchema>;

/** Inference options; `oriShape` resizes the result back to the original image size (MMSegmentation's `rescale`). */
export type SegmentorInferenceOptions = InferenceOptions & { oriShape?: readonly [number, number] };

/**
 * MMSegmentation's EncoderDecoder: backbone (→ neck) → decode head (+ auxiliary heads). Children are
 * registered as `backbone`, `neck`, `decode_head`, `auxiliary_head` (a ModuleList for a list of heads),
 * so parameter names equal MMSegmentation's state-dict keys.
 */
export class EncoderDecoder extends Module implements Segmentor {
  readonly backbone: FeatureExtractor;
  readonly neck: FeatureExtractor | null;
  readonly decodeHead: DecodeHead;
  /** The auxiliary heads with the prefix their losses get (`aux`, or `aux_0`, `aux_1`, ...). */
  readonly auxiliaryHeads: { prefix: string; head: DecodeHead }[] = [];
  readonly testCfg: EncoderDecoderOptions['test_cfg'];

  constructor(options: EncoderDecoderOptions, ctx: BuildContext) {
    super();
    this.backbone = this.registerModule('backbone', ctx.build('backbones', options.backbone, 'backbone'));
    this.neck = options.neck ? this.registerModule('neck', ctx.build('necks', options.neck, 'neck')) : null;
    this.decodeHead = this.registerModule('decode_head', ctx.build('heads', options.decode_head, 'decode_head'));
    const aux = options.auxiliary_head;
    if (Array.isArray(aux)) {
      const list = this.registerModule('auxiliary_head', new ModuleList());
      aux.forEach((cfg, i) => {
        const head = ctx.build('heads', cfg, `auxiliary_head.${i}`);
        list.push(head);
        this.auxiliaryHeads.push({ prefix: `aux_${i}`, head });
      });
    } else if (aux) {
      this.auxiliaryHeads.push({ prefix: 'aux', head: this.registerModule('auxiliary_head', ctx.build('heads', aux, 'auxiliary_head')) });
    }
    this.testCfg = options.test_cfg;
    if (this.testCfg.mode === 'slide' && (!this.testCfg.crop_size || !this.testCfg.stride)) {
      throw new SegkitError(`${ctx.path}.test_cfg: slide mode needs crop_size and stride, got ${formatValue(this.testCfg)}`, ctx.path);
    }
  }

  get numClasses(): number {
    return this.decodeHead.numClasses;
  }

  get alignCorners(): boolean {
    return this.decodeHead.alignCorners;
  }

  /** Backbone (and neck) features. */
  extractFeat(images: tf.Tensor4D): tf.Tensor[] {
    const features = this.backbone.forward(images);
    return this.neck ? this.neck.forward(features) : features;
  }

  /** Decode-head logits resized to the input size (MMSegmentation's `encode_decode`). */
  encodeDecode(images: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const logits = this.decodeHead.forward(this.extractFeat(images)) as tf.Tensor4D;
      return resize(logits, [images.shape[1], images.shape[2]], { alignCorners: this.alignCorners });
    });
  }

  override forward(images: tf.Tensor4D): tf.Tensor4D {
    return this.encodeDecode(images);
  }

  /** images [N,H,W,3], labels [N,H,W] int32 → losses keyed `decode.*`, `aux.*` (or `aux_0.*`, ...). */
  forwardTrain(images: tf.Tensor4D, labels: tf.Tensor3D): Record<string, tf.Tensor> {
    return tf.tidy(() => {
      const features = this.extractFeat(images);
      const result: Record<string, tf.Tensor> = {};
      const add = (prefix: string, losses: Record<string, tf.Tensor>) => {
        for (const [key, value] of Object.entries(losses)) result[`${prefix}.${key}`] = value;
      };
      add('decode', this.decodeHead.losses(this.decodeHead.forward(features), labels));
      for (const { prefix, head } of this.auxiliaryHeads) add(prefix, head.losses(head.forward(features), labels));
      return result;
    });
  }

  async checkLabels(labels: tf.Tensor3D): Promise<void> {
    await this.decodeHead.checkLabels?.(labels);
    for (const { head } of this.auxiliaryHeads) await head.checkLabels?.(labels);
  }

  /**
   * MMSegmentation's `inference` up to (not including) the softmax: logits [N,H,W,C] at the input size,
   * whole-image or averaged over sliding windows (`test_cfg` unless overridden), resized to `oriShape`
   * if given. Logits rather than probabilities, so callers may still crop and resize before the argmax.
   */
  inference(images: tf.Tensor4D, options: SegmentorInferenceOptions = {}): tf.Tensor4D {
    const mode = options.mode ?? this.testCfg.mode;
    return tf.tidy(() => {
      let logits: tf.Tensor4D;
      if (mode === 'whole') logits = this.encodeDecode(images);
      else {
        const crop = options.crop_size ?? this.testCfg.crop_size;
        const stride = options.stride ?? this.testCfg.stride;
        if (!crop || !stride) throw new SegkitError(`test_cfg: slide inference needs crop_size and stride, got crop_size ${describeValue(crop)} and stride ${describeValue(stride)}`);
        logits = slideInference(images, crop, stride, (window) => this.encodeDecode(window));
      }
      return options.oriShape ? resize(logits, options.oriShape, { alignCorners: this.alignCorners }) : logits;
    });
  }

  /**
   * The whole-image inference graph (`encodeDecode`): image [N,3,H,W] → logits [N,C,H,W], or with
   * `output: 'labels'` the int32 label map [N,H,W] of `labelsFromLogits`. Auxiliary heads (training
   * only) are left out; slide inference stays with the caller.
   */
  override exportOnnx(ctx: OnnxExportContext, image: OnnxValue, options: { output?: 'logits' | 'labels' } = {}): OnnxValue {
    let features = ctx.call<OnnxValue[]>(this.backbone, image);
    if (this.neck) features = ctx.call<OnnxValue[]>(this.neck, features);
    const headLogits = ctx.call(this.decodeHead, features);
    const logits = ctx.resize(headLogits, ctx.spatialSize(image), { alignCorners: this.alignCorners });
    return options.output === 'labels' ? this.labelsFromLogitsOnnx(ctx, logits) : logits;
  }

  /** `labelsFromLogits` as ONNX nodes: argmax over channels (first maximum, as tf.argMax), or sigmoid > threshold. */
  private labelsFromLogitsOnnx(ctx: OnnxExportContext, logits: OnnxValue): OnnxValue {
    const [n, c, h, w] = logits.shape;
    const shape = [n ?? null, h ?? null, w ?? null];
    if (c === 1) {
      const threshold = this.decodeHead.threshold ?? 0.3;
      const probabilities = ctx.node('Squeeze', [ctx.node('Sigmoid', [logits], { shape: logits.shape }), ctx.constant([1], [1], 'int64')], { shape });
      return ctx.cast(ctx.node('Greater', [probabilities, ctx.constant([threshold], [])], { shape, dtype: 'bool' }), 'int32');
    }
    return ctx.cast(ctx.node('ArgMax', [logits], { attributes: { axis: 1, keepdims: 0 }, shape, dtype: 'int64' }), 'int32');
  }

  /** int32 label maps [N,H,W] of `inference`'s logits (see `labelsFromLogits`). */
  predict(images: tf.Tensor4D, options: SegmentorInferenceOptions = {}): tf.Tensor3D {
    return tf.tidy(() => this.labelsFromLogits(this.inference(images, options)));
  }

  /** Argmax over classes, or sigmoid > the decode head's `threshold` for a single-channel head. */
  labelsFromLogits(logits: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      if (logits.shape[3] === 1) {
        const threshold = this.decodeHead.threshold ?? 0.3;
        return tf.cast(tf.greater(tf.sigmoid(tf.squeeze(logits, [3])), threshold), 'int32') as tf.Tensor3D;
      }
      return tf.argMax(logits, 3) as tf.Tensor3D;
    });
  }
}

export const encoderDecoderDefinition: ComponentOf<'segmentors', EncoderDecoderOptions> = {
  type: 'EncoderDecoder',
  schema: encoderDecoderSchema,
  create: (options, ctx) => new EncoderDecoder(options, ctx),
  description: 'backbone (+ neck) + decode head (+ auxiliary heads), whole or slide inference',
};
