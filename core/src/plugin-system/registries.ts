/**
 * Every extension point of segkit in one table: for each registry, the kind of object its components
 * build and the typed context a component receives from whatever builds it (its parent). A plugin author
 * reads this file to see what to implement; `definePlugin` checks each `create` against it.
 */
import type { z } from 'zod';
import type {
  Dataset,
  DecodeHead,
  FeatureExtractor,
  Loss,
  LrScheduler,
  Metric,
  Optimizer,
  OptimizerConstructor,
  ParamGroupSpec,
  PixelSampler,
  Segmentor,
  Transform,
} from '../components';
import type { Hook } from '../training/hook';
import type { BackendProvider } from './backend';

/** Nothing is handed down: the component is built from its config alone. */
export type NoParent = Record<never, never>;

/** What a decode head hands its losses (absent when a loss is built on its own, e.g. in a script). */
export interface LossParent {
  /** The head's `num_classes` (class_weight length checks). */
  readonly numClasses?: number;
  /** The head's `ignore_index`. */
  readonly ignoreIndex?: number;
  /** The head's config path, for messages. */
  readonly head?: string;
}

/** What a decode head hands its pixel sampler: its loss context and the losses the sampler weighs. */
export interface SamplerParent extends LossParent {
  readonly lossDecode?: readonly Loss[];
}

/** What an optimizer constructor hands the optimizer: the model's parameters in groups. */
export interface OptimizerParent {
  readonly paramGroups: readonly ParamGroupSpec[];
}

/** What the runner hands an LR scheduler: the run's length (poly and cosine need it). */
export interface LrSchedulerParent {
  readonly maxIters: number;
}

/** What the runner hands a hook: `log_config.interval`, the default interval of logger hooks. */
export interface HookParent {
  readonly logInterval?: number;
}

interface Contract<TInstance, TParent = NoParent> {
  readonly instance: TInstance;
  readonly parent: TParent;
}

/** The registry contracts: `kernel.build(name, cfg)` returns `instance`; components receive `parent`. */
export interface RegistryContracts {
  backbones: Contract<FeatureExtractor>;
  necks: Contract<FeatureExtractor>;
  heads: Contract<DecodeHead>;
  segmentors: Contract<Segmentor>;
  losses: Contract<Loss, LossParent>;
  samplers: Contract<PixelSampler, SamplerParent>;
  optimizers: Contract<Optimizer, OptimizerParent>;
  optimizerConstructors: Contract<OptimizerConstructor>;
  lrSchedulers: Contract<LrScheduler, LrSchedulerParent>;
  datasets: Contract<Dataset>;
  transforms: Contract<Transform>;
  hooks: Contract<Hook, HookParent>;
  metrics: Contract<Metric>;
  backends: Contract<BackendProvider>;
}

/** The component kinds of segkit, in the order `segkit list` shows them; one typed registry each. */
export const REGISTRY_NAMES = [
  'backbones',
  'necks',
  'heads',
  'segmentors',
  'losses',
  'samplers',
  'optimizers',
  'optimizerConstructors',
  'lrSchedulers',
  'datasets',
  'transforms',
  'hooks',
  'metrics',
  'backends',
] as const satisfies readonly (keyof RegistryContracts)[];

export type RegistryName = (typeof REGISTRY_NAMES)[number];
export type InstanceOf<R extends RegistryName> = RegistryContracts[R]['instance'];
export type ParentOf<R extends RegistryName> = RegistryContracts[R]['parent'];

/** The parent argument of a build: optional where every field of the parent is. */
export type ParentArgument<R extends RegistryName> = NoParent extends ParentOf<R> ? [parent?: ParentOf<R>] : [parent: ParentOf<R>];

/**
 * What a plugin contributes to a registry: a `type` name (MMSegmentation's), the zod schema of its
 * options (defaults filled in by the schema; the option types come from it) and a factory.
 */
export interface ComponentDefinition<TOptions = any, TInstance = unknown, TParent = unknown> {
  readonly type: string;
  readonly schema: z.ZodType<TOptions>;
  create(options: TOptions, context: BuildContext<TParent>): TInstance;
  /** One line for `segkit list`. */
  readonly description?: string;
}

/**
 * A component definition checked against registry R's contract: `create` receives R's parent context and
 * must return R's instance type (or a subtype, `TInstance`).
 */
export type ComponentOf<R extends RegistryName, TOptions = any, TInstance extends InstanceOf<R> = InstanceOf<R>> = ComponentDefinition<TOptions, TInstance, ParentOf<R>>;

/** Given to a component's factory: where it sits in the config, what its parent hands down, and how to build nested parts. */
export interface BuildContext<TParent = unknown> {
  /** The config path of this component, e.g. `model.decode_head.sampler`. */
  readonly path: string;
  /** Folder of the config file, for resolving relative file options (e.g. `class_weight: './w.json'`). */
  readonly configDir: string;
  /** What the builder handed down (see the registry's contract). */
  readonly parent: Readonly<TParent>;
  /** Builds a nested config; `key` is appended to this component's path in error messages. */
  build<R extends RegistryName>(registry: R, cfg: unknown, key: string | number, ...parent: ParentArgument<R>): InstanceOf<R>;
  /** Logs a warning once per distinct message. */
  warn(message: string): void;
  readonly logger: Logger;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

export function isRegistryName(name: string): name is RegistryName {
  return (REGISTRY_NAMES as readonly string[]).includes(name);
}
