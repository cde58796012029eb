import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Conv2d, Dropout2d, Module, normalInit, constantInit, resize, type ActivationConfig, type NormConfig } from '../nn';
import { SegkitError } from '../errors';
import type { BuildContext } from '../plugin-system/registries';
import type { DecodeHead, Loss, PixelSampler } from '../components';
import { checkDecodeLossConfig, computeDecodeLosses } from './decode-losses';
import { describeValue } from '../config/validation';
import type { OnnxExportContext, OnnxValue } from '../export/onnx/types';

/** A nested component config (`{ type, ...options }`), validated by that component's own schema when built. */
export const componentConfigSchema = z.looseObject({ type: z.string({ error: 'expected a type name' }) });

const intOrList = z.union([z.number().int(), z.array(z.number().int()).min(1)]);

export const normConfigSchema = z.looseObject({ type: z.string(), requires_grad: z.boolean().optional(), num_groups: z.number().int().positive().optional() });
export const actConfigSchema = z.looseObject({ type: z.string() });

/** The options of MMSegmentation's BaseDecodeHead, with its defaults; heads extend this schema. */
export const decodeHeadBaseSchema = z.object({
  in_channels: z.union([z.number().int().positive(), z.array(z.number().int().positive()).min(1)]),
  channels: z.number().int().positive({ error: 'expected a positive integer' }),
  num_classes: z.number().int().positive({ error: 'expected a positive integer' }),
  out_channels: z.number().int().positive().nullable().default(null),
  threshold: z.number().nullable().default(null),
  dropout_ratio: z.number().min(0).max(1, { error: 'expected a ratio in [0, 1]' }).default(0.1),
  conv_cfg: z.looseObject({ type: z.string() }).nullable().default(null),
  norm_cfg: normConfigSchema.nullable().default(null),
  act_cfg: actConfigSchema.nullable().default({ type: 'ReLU' }),
  in_index: intOrList.default(-1),
  input_transform: z.enum(['resize_concat', 'multiple_select']).nullable().default(null),
  loss_decode: z
    .union([componentConfigSchema, z.array(componentConfigSchema).min(1)])
    .default({ type: 'CrossEntropyLoss', use_sigmoid: false, loss_weight: 1.0 }),
  ignore_index: z.number().int().default(255),
  sampler: componentConfigSchema.nullable().default(null),
  align_corners: z.boolean().default(false),
  init_cfg: z.unknown().optional(),
});

export type ParsedDecodeHeadOptions = z.output<typeof decodeHeadBaseSchema>;

/**
 * MMSegmentation's BaseDecodeHead: input selection (`in_index`, `input_transform`), `conv_seg`
 * (registered first, so its parameters lead the head's — as in MMSegmentation), Dropout2d, the loss
 * modules and the optional pixel sampler. Subclasses build their layers and implement `forward`.
 */
export abstract class BaseDecodeHead extends Module implements DecodeHead {
  readonly inChannels: number | number[];
  readonly channels: number;
  readonly numClasses: number;
  readonly outChannels: number;
  readonly threshold: number | null;
  readonly dropoutRatio: number;
  readonly convCfg: { type: string } | null;
  readonly normCfg: NormConfig | null;
  readonly actCfg: ActivationConfig | null;
  readonly inIndex: number | number[];
  readonly inputTransform: 'resize_concat' | 'multiple_select' | null;
  readonly ignoreIndex: number;
  readonly alignCorners: boolean;
  readonly lossDecode: Loss[];
  readonly sampler: PixelSampler | null;
  /** The config path of this head, e.g. `model.decode_head`. */
  readonly headName: string;
  readonly convSeg: Conv2d;
  readonly dropout: Dropout2d | null;

  constructor(options: ParsedDecodeHeadOptions, ctx: BuildContext) {
    super();
    this.headName = ctx.path;
    this.channels = options.channels;
    this.numClasses = options.num_classes;
    this.dropoutRatio = options.dropout_ratio;
    this.convCfg = options.conv_cfg;
    if (this.convCfg && this.convCfg.type !== 'Conv2d' && this.convCfg.type !== 'Conv') {
      throw new SegkitError(`${ctx.path}.conv_cfg.type: only 'Conv2d' is supported, got '${this.convCfg.type}'`, ctx.path);
    }
    this.normCfg = options.norm_cfg as NormConfig | null;
    this.actCfg = options.act_cfg as ActivationConfig | null;
    this.ignoreIndex = options.ignore_index;
    this.alignCorners = options.align_corners;
    this.inputTransform = options.input_transform;
    [this.inChannels, this.inIndex] = resolveInputs(options, ctx.path);

    if (options.out_channels === null && options.num_classes === 2) {
      ctx.warn(`${ctx.path}: for binary segmentation, setting out_channels=1 (with a sigmoid loss) is recommended over num_classes=2`);
    }
    this.outChannels = options.out_channels ?? options.num_classes;
    if (this.outChannels !== this.numClasses && this.outChannels !== 1) {
      throw new SegkitError(`${ctx.path}.out_channels: expected num_classes (${this.numClasses}) or 1, got ${this.outChannels}`, ctx.path);
    }
    if (this.outChannels === 1 && options.threshold === null) ctx.warn(`${ctx.path}: threshold is not set for a binary head (out_channels=1); using 0.3`);
    this.threshold = options.threshold ?? (this.outChannels === 1 ? 0.3 : null);

    const lossParent = { numClasses: this.numClasses, ignoreIndex: this.ignoreIndex, head: ctx.path };
    this.lossDecode = Array.isArray(options.loss_decode)
      ? options.loss_decode.map((cfg, i) => ctx.build('losses', cfg, `loss_decode.${i}`, lossParent))
      : [ctx.build('losses', options.loss_decode, 'loss_decode', lossParent)];
    this.sampler = options.sampler ? ctx.build('samplers', options.sampler, 'sampler', { ...lossParent, lossDecode: this.lossDecode }) : null;
    checkDecodeLossConfig(this.lossDecode, this.sampler, ctx.path, (message) => ctx.warn(message));

    this.convSeg = this.registerModule('conv_seg', new Conv2d(this.channels, this.outChannels, 1));
    normalInit(this.convSeg.weight, 0, 0.01);
    constantInit(this.convSeg.bias!, 0);
    this.dropout = this.dropoutRatio > 0 ? this.registerModule('dropout', new Dropout2d(this.dropoutRatio)) : null;
  }

  /** Backbone/neck features → logits [N,h,w,outChannels]. */
  abstract override forward(features: tf.Tensor[]): tf.Tensor4D;

  /** Picks (and for `resize_concat` resizes to the first one's size and concatenates) the head's inputs. */
  protected transformInputs(features: tf.Tensor[]): tf.Tensor4D {
    if (this.inputTransform === 'multiple_select') {
      throw new Error(`${this.constructor.name}: input_transform 'multiple_select' gives several inputs; use selectInputs()`);
    }
    if (this.inputTransform === 'resize_concat') {
      const selected = this.selectInputs(features);
      const [, h, w] = selected[0]!.shape;
      return tf.tidy(() => tf.concat(selected.map((x) => resize(x, [h, w], { alignCorners: this.alignCorners })), 3));
    }
    return pick(features, this.inIndex as number, this.headName) as tf.Tensor4D;
  }

  /** The inputs at `in_index` (a list with `multiple_select` / `resize_concat`). */
  protected selectInputs(features: tf.Tensor[]): tf.Tensor4D[] {
    const indices = Array.isArray(this.inIndex) ? this.inIndex : [this.inIndex];
    return indices.map((index) => pick(features, index, this.headName) as tf.Tensor4D);
  }

  /** `transformInputs` for an ONNX graph (NCHW values: channels are axis 1). */
  protected transformInputsOnnx(ctx: OnnxExportContext, features: OnnxValue[]): OnnxValue {
    if (this.inputTransform === 'multiple_select') ctx.unsupported("uses input_transform 'multiple_select'; its exportOnnx must take the inputs itself");
    if (this.inputTransform === 'resize_concat') {
      const selected = (Array.isArray(this.inIndex) ? this.inIndex : [this.inIndex]).map((index) => pick(features, index, this.headName));
      const size = ctx.spatialSize(selected[0]!);
      return ctx.concat(selected.map((x) => ctx.resize(x, size, { alignCorners: this.alignCorners })), 1);
    }
    return pick(features, this.inIndex as number, this.headName);
  }

  /** `clsSeg` for an ONNX graph. */
  protected clsSegOnnx(ctx: OnnxExportContext, features: OnnxValue): OnnxValue {
    return ctx.call(this.convSeg, this.dropout ? ctx.call(this.dropout, features) : features);
  }

  /** Dropout2d (train mode only) → 1×1 `conv_seg`. */
  protected clsSeg(features: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.convSeg.forward(this.dropout ? this.dropout.forward(features) : features));
  }

  /** Loss dict of logits [N,h,w,C] against labels [N,H,W] (`loss_ce`, ..., `acc_seg`). */
  losses(segLogits: tf.Tensor, labels: tf.Tensor): Record<string, tf.Tensor> {
    return computeDecodeLosses(segLogits as tf.Tensor4D, labels as tf.Tensor3D, {
      losses: this.lossDecode,
      sampler: this.sampler,
      alignCorners: this.alignCorners,
      ignoreIndex: this.ignoreIndex,
      headName: this.headName,
    });
  }

  async checkLabels(labels: tf.Tensor): Promise<void> {
    for (const loss of this.lossDecode) await loss.checkLabels?.(labels, this.outChannels, this.ignoreIndex);
  }

  forwardTrain(features: tf.Tensor[], labels: tf.Tensor3D): Record<string, tf.Tensor> {
    return tf.tidy(() => this.losses(this.forward(features), labels));
  }
}

function pick<T>(features: T[], index: number, headName: string): T {
  const feature = features[index < 0 ? features.length + index : index];
  if (!feature) throw new SegkitError(`${headName}.in_index: ${index} is out of range for the ${features.length} feature maps of the backbone/neck`, headName);
  return feature;
}

function resolveInputs(options: ParsedDecodeHeadOptions, path: string): [number | number[], number | number[]] {
  const { in_channels: inChannels, in_index: inIndex, input_transform: transform } = options;
  if (transform === null) {
    if (Array.isArray(inChannels) || Array.isArray(inIndex)) {
      throw new SegkitError(`${path}: in_channels and in_index must be single integers without input_transform, got ${describeValue(inChannels)} and ${describeValue(inIndex)}`, path);
    }
    return [inChannels, inIndex];
  }
  if (!Array.isArray(inChannels) || !Array.isArray(inIndex) || inChannels.length !== inIndex.length) {
    throw new SegkitError(`${path}: with input_transform '${transform}', in_channels and in_index must be lists of the same length, got ${describeValue(inChannels)} and ${describeValue(inIndex)}`, path);
  }
  return [transform === 'resize_concat' ? inChannels.reduce((a, b) => a + b, 0) : inChannels, inIndex];
}
