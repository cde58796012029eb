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
 * Any `type` name: completes the declared names `K` (`string & {}` keeps them from being absorbed by
 * `string`) and accepts every other one.
 */
export type OpenTypeName<K> = (K & string) | (string & {});

/**
 * A component config in an open world: `{ type: K, ...options of K }` for every type K a plugin
 * declares in the program, and for any other `type` (a plugin without declarations, a local file)
 * the generic shape — the options `Common` to the kind (e.g. the decode-head base options) and
 * anything else. Declarations of several plugins only add members, so they never conflict.
 * `defineConfig` then checks a config whose `type` is declared against that declaration alone
 * (see `KnownOptionsCheck`), so a misspelled option of a known type still fails to compile.
 */
export type ComponentConfig<M, Common = unknown> =
  | { [K in keyof M]: Mergeable & { type?: K } & M[K] }[keyof M]
  | (Mergeable & { type?: OpenTypeName<keyof M> } & Common & { [option: string]: unknown });

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
  type?: OpenTypeName<'EncoderDecoder' | keyof SegmentorOptionsMap>;
  pretrained?: string | null;
  backbone?: BackboneConfig;
  neck?: NeckConfig | null;
  decode_head?: HeadConfig;
  auxiliary_head?: HeadConfig | HeadConfig[] | null;
  train_cfg?: Record<string, unknown>;
  /**
   * Whole-image or sliding-window inference. `batch_size` (slide mode): windows stacked into one forward
   * pass, a positive integer; 1 runs them one at a time as MMSegmentation 0.x does. Unset: 256² window
   * pixels per pass (16 windows of 64², 4 of 128², 1 of 256² or more; `defaultSlideBatchSize`).
   */
  test_cfg?: { mode?: 'whole' | 'slide'; crop_size?: [number, number]; stride?: [number, number]; batch_size?: number } & Mergeable;
  init_cfg?: unknown;
}

export interface DataSplitConfig extends Mergeable {
  type?: string;
  pipeline?: TransformConfig[];
  [option: string]: unknown;
}

/** The type of `defineConfig`: the run spec's input type (every top-level key MMSegmentation 0.x configs use). */
export type { SegkitConfig } from './run-spec';

/*
 * The check `defineConfig` adds to its parameter type. In an open world every component position
 * accepts the generic shape, so on its own a config `{ type: 'CrossEntropyLoss', loss_wieght: 1 }`
 * would pass as "some other type". `KnownOptionsCheck<C, T>` walks the config's inferred type `C`
 * along the expected type `T` and, wherever a dict's `type` is a name the expected type declares,
 * turns every key that declaration lacks into `never` and intersects each value with the declared
 * option type; elsewhere it turns unknown keys of closed dicts (the top level, `model`, `data`, ...)
 * into `never`. Intersected with `C`, a wrong key or value becomes a compile error at that key.
 */
type ElementOf<T> = T extends readonly (infer E)[] ? E : never;
type DictMembers<T> = T extends readonly unknown[] ? never : T extends object ? T : never;
/** Every key some member of `T` has (`string` when one has an index signature). */
type KeysOfAny<T> = T extends unknown ? keyof T : never;
/** The type of key `K` across the members of `T` that have it, index signatures included. */
type ValueOfAny<T, K> = T extends unknown ? (K extends keyof T ? T[K] : string extends keyof T ? T[string & keyof T] : never) : never;
/** The members of `T` that declare the type name `N` literally (not the open member's `string`). */
type DeclaredMember<T, N> = T extends { type?: infer K } ? (string extends K ? never : N extends K ? T : never) : never;

export type KnownOptionsCheck<C, T> = C extends readonly unknown[]
  ? { [I in keyof C]: KnownOptionsCheck<C[I], ElementOf<T>> }
  : C extends object
    ? // \`C &\` keeps each member of a union (e.g. the element type of a list of losses) paired with its own check.
      C & CheckDict<C, DictMembers<T>>
    : unknown;

type CheckDict<C, T> = [T] extends [never]
  ? unknown
  : C extends { type: infer N extends string }
    ? [DeclaredMember<T, N>] extends [never]
      ? CheckKeys<C, T>
      : CheckDeclared<C, DeclaredMember<T, N>, N>
    : CheckKeys<C, T>;

type CheckKeys<C, T> = { [K in keyof C]: K extends KeysOfAny<T> ? KnownOptionsCheck<C[K], ValueOfAny<T, K>> : NotAKey<K> };

type CheckDeclared<C, M, N> = { [K in keyof C]: K extends KeysOfAny<M> ? KnownOptionsCheck<C[K], ValueOfAny<M, K>> & ValueOfAny<M, K> : NotAnOption<K, N> };

/** What a wrong key becomes: a type no value has, whose name says why in the compiler's message. */
export type NotAnOption<K, N> = { readonly [why in `'${K & string}' is not an option of ${N & string}`]: never };
export type NotAKey<K> = { readonly [why in `'${K & string}' is not a key here`]: never };
