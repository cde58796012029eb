import type { ServiceIdentifier } from 'inversify';
import type { z } from 'zod';

/** The component kinds of segkit; one typed registry (and one inversify token) each. */
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
] as const;

export type RegistryName = (typeof REGISTRY_NAMES)[number];

/**
 * What a plugin contributes to a registry: a `type` name (MMSegmentation's), the zod schema of its
 * options (defaults filled in by the schema) and a factory. Plain objects, so no decorators are needed.
 */
export interface ComponentDefinition<TOptions = any, TInstance = unknown> {
  readonly type: string;
  readonly schema: z.ZodType<TOptions>;
  create(options: TOptions, context: BuildContext): TInstance;
  /** One line for `segkit list`. */
  readonly description?: string;
}

/** Given to a component's factory: where it sits in the config, and how to build its nested parts. */
export interface BuildContext {
  /** The config path of this component, e.g. `model.decode_head.sampler`. */
  readonly path: string;
  /** Folder of the config file, for resolving relative file options (e.g. `class_weight: './w.json'`). */
  readonly configDir: string;
  /** Values the parent passes down (e.g. a head passes `numClasses`, `ignoreIndex`, itself as `head`). */
  readonly extra: Readonly<Record<string, unknown>>;
  /** Builds a nested config; `key` is appended to this component's path in error messages. */
  build<T = unknown>(registry: RegistryName, cfg: unknown, key: string | number, extra?: Record<string, unknown>): T;
  /** Logs a warning once per distinct message. */
  warn(message: string): void;
  readonly logger: Logger;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

/** inversify tokens, one per registry: plugins bind their definitions to these (multi-injection). */
export const REGISTRY_TOKENS: { readonly [K in RegistryName]: ServiceIdentifier<ComponentDefinition> } =
  Object.fromEntries(REGISTRY_NAMES.map((name) => [name, Symbol.for(`segkit.registry.${name}`)])) as never;

export function isRegistryName(name: string): name is RegistryName {
  return (REGISTRY_NAMES as readonly string[]).includes(name);
}
