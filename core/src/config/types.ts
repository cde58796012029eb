/**
 * Typed configs. Each interface below maps a component `type` to its options; it is empty in core
 * and filled by plugins through declaration merging, e.g.
 *
 *   declare module '@segkit/core' {
 *     interface LossOptionsMap { CrossEntropyLoss: { use_sigmoid?: boolean; loss_weight?: number } }
 *   }
 *
 * so that `defineConfig` completes the `type` names and options of the installed plugins and a
 * misspelled `type` does not compile. Everything is optional because a config may be a partial
 * override merged onto its `_base_`.
 */
/* eslint-disable @typescript-eslint/no-empty-interface */
export interface BackboneOptionsMap {}
export interface NeckOptionsMap {}
export interface HeadOptionsMap {}
export interface SegmentorOptionsMap {}
export interface LossOptionsMap {}
export interface SamplerOptionsMap {}
export interface OptimizerOptionsMap {}
export interface OptimizerConstructorOptionsMap {}
export interface LrSchedulerOptionsMap {}
export interface DatasetOptionsMap {}
export interface TransformOptionsMap {}
export interface HookOptionsMap {}
export interface MetricOptionsMap {}

export interface Mergeable {
  /** Replace the base config's dict instead of merging into it. */
  _delete_?: boolean;
}

/**
 * `{ type: K, ...options of K }` for every registered K; while none is registered, any `type` with
 * the options `Common` to the kind (e.g. the decode-head base options) and anything else.
 */
export type ComponentConfig<M, Common = unknown> = [keyof M] extends [never]
  ? Mergeable & { type?: string } & Common & { [option: string]: unknown }
  : { [K in keyof M]: Mergeable & { type?: K } & M[K] }[keyof M];

export type BackboneConfig = ComponentConfig<BackboneOptionsMap>;
export type NeckConfig = ComponentConfig<NeckOptionsMap>;
export type HeadConfig = ComponentConfig<HeadOptionsMap, DecodeHeadBaseOptions>;
export type LossConfig = ComponentConfig<LossOptionsMap>;
export type SamplerConfig = ComponentConfig<SamplerOptionsMap>;
export type OptimizerConfig = ComponentConfig<OptimizerOptionsMap>;
export type DatasetConfig = ComponentConfig<DatasetOptionsMap>;
export type TransformConfig = ComponentConfig<TransformOptionsMap>;
export type HookConfig = ComponentConfig<HookOptionsMap>;

/** Options every decode head accepts (the decode-head base of core). */
export interface DecodeHeadBaseOptions {
  in_channels?: number | number[];
  channels?: number;
  num_classes?: number;
  out_channels?: number;
  threshold?: number;
  dropout_ratio?: number;
  conv_cfg?: Record<string, unknown> | null;
  norm_cfg?: { type: string; requires_grad?: boolean; num_groups?: number } | null;
  act_cfg?: { type: string } | null;
  in_index?: number | number[];
  input_transform?: 'resize_concat' | 'multiple_select' | null;
  loss_decode?: LossConfig | LossConfig[];
  ignore_index?: number;
  sampler?: SamplerConfig | null;
  align_corners?: boolean;
  init_cfg?: unknown;
}

export interface ModelConfig extends Mergeable {
  type?: 'EncoderDecoder' | keyof SegmentorOptionsMap;
  pretrained?: string | null;
  backbone?: BackboneConfig;
  neck?: NeckConfig | null;
  decode_head?: HeadConfig;
  auxiliary_head?: HeadConfig | HeadConfig[] | null;
  train_cfg?: Record<string, unknown>;
  test_cfg?: { mode?: 'whole' | 'slide'; crop_size?: [number, number]; stride?: [number, number] } & Mergeable;
  init_cfg?: unknown;
}

export interface DataSplitConfig extends Mergeable {
  type?: string;
  pipeline?: TransformConfig[];
  [option: string]: unknown;
}

/** The type of `defineConfig`: the run spec's input type (every top-level key MMSegmentation 0.x configs use). */
export type { SegkitConfig } from './run-spec';
