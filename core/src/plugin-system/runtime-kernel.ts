import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { Container, type ServiceIdentifier } from 'inversify';
import { z } from 'zod';
import { SegkitError, isSegkitError, joinPath, nearestName } from '../errors';
import {
  REGISTRY_NAMES,
  type BuildContext,
  type ComponentOf,
  type InstanceOf,
  type Logger,
  type NoParent,
  type ParentOf,
  type RegistryName,
} from './registries';
import { TOKENS, isSegkitPlugin, type ComponentRecord, type SegkitPlugin } from './plugin';
import { validateOptions, describeValue, formatValue } from '../config/validation';
import { EventBus } from '../bus';
import type { BackendProvider } from './backend';
import { corePlugin } from './core-plugin';

export interface RegisteredComponent {
  readonly type: string;
  readonly plugin: string;
  readonly version: string;
  readonly description?: string;
}

type RegistryIndex = ReadonlyMap<string, ComponentRecord>;

/** A typed, read-only view of one registry: which types exist and which plugin provides each. */
export class Registry<R extends RegistryName = RegistryName> {
  constructor(
    readonly name: R,
    private readonly index: () => RegistryIndex,
    /** Why a type is missing when an installed package declares it (the kernel's `providerHint`). */
    private readonly missingHint: (registry: RegistryName, type: string) => string | undefined = () => undefined,
  ) {}

  list(): string[] {
    return [...this.index().keys()].sort();
  }

  has(type: string): boolean {
    return this.index().has(type);
  }

  describe(): RegisteredComponent[] {
    return this.list().map((type) => {
      const { definition, plugin } = this.index().get(type)!;
      return { type, plugin: plugin.name, version: plugin.version, description: definition.description };
    });
  }

  definition(type: string, configPath = 'type'): ComponentOf<R> {
    const entry = this.index().get(type);
    if (entry) return entry.definition as ComponentOf<R>;
    const known = this.list();
    const nearest = nearestName(type, known);
    const parts = [
      `${configPath}: unknown ${this.name} type '${type}'`,
      nearest ? `did you mean '${nearest}'?` : undefined,
      `registered: ${known.length ? known.join(', ') : 'none'}`,
      this.missingHint(this.name, type) ?? 'is its plugin listed in `plugins`?',
    ];
    throw new SegkitError(parts.filter(Boolean).join('; '), configPath);
  }
}

export type Registries = { readonly [R in RegistryName]: Registry<R> };

/** Options of `kernel.build`: the config path for messages and what the builder hands down (the registry's contract). */
export type BuildOptions<R extends RegistryName> = { path?: string } & (NoParent extends ParentOf<R> ? { parent?: ParentOf<R> } : { parent: ParentOf<R> });
type BuildArguments<R extends RegistryName> = NoParent extends ParentOf<R> ? [options?: BuildOptions<R>] : [options: BuildOptions<R>];

function consoleLogger(): Logger {
  return { info: (m) => console.log(m), warn: (m) => console.warn(`warning: ${m}`) };
}

/**
 * The segkit kernel without Node: registries, plugin objects, `build`. Node's `Kernel` (kernel.ts) adds
 * plugins resolved by package name or path and providers found among the installed packages; a browser
 * bundle uses this one through `createRuntimeKernel`. Its inversify container is the composition root: the event bus and the logger are
 * services bound in it, and every plugin's ContainerModule binds component records and contributions
 * (multi-bindings) that the registries and the CLI read. One typed registry per component kind; `build`
 * turns a config into a component.
 */
export class RuntimeKernel {
  protected readonly container = new Container();
  readonly registries: Registries;
  readonly plugins: SegkitPlugin[] = [];
  backend = 'cpu';
  private indexes = new Map<RegistryName, RegistryIndex>();
  private readonly warned = new Set<string>();

  constructor(
    readonly configDir: string,
    logger: Logger = consoleLogger(),
  ) {
    this.container.bind(TOKENS.logger).toConstantValue(logger);
    this.container.bind(TOKENS.bus).toConstantValue(new EventBus());
    this.registries = Object.fromEntries(
      REGISTRY_NAMES.map((name) => [name, new Registry(name, () => this.indexes.get(name) ?? new Map(), (registry, type) => this.providerHint(registry, type))]),
    ) as unknown as Registries;
  }

  get bus(): EventBus {
    return this.container.get(TOKENS.bus);
  }

  get logger(): Logger {
    return this.container.get(TOKENS.logger);
  }

  /** Every contribution bound to a multi-binding token (e.g. `TOKENS.cliCommands`) by the loaded plugins. */
  contributions<T>(token: ServiceIdentifier<T>): T[] {
    return this.container.isBound(token) ? this.container.getAll(token) : [];
  }

  /** Loads one plugin into the container; its component records become visible in the registries. */
  async loadPlugin(plugin: SegkitPlugin): Promise<void> {
    if (this.plugins.some((p) => p === plugin)) return;
    await this.container.load(plugin.module);
    try {
      this.indexes = indexComponents(this.contributions(TOKENS.components));
    } catch (error) {
      await this.container.unload(plugin.module);
      throw error;
    }
    this.plugins.push(plugin);
  }

  /** The end of an unknown-type error naming where the type would come from; the runtime knows no installed packages. */
  protected providerHint(_registry: RegistryName, _type: string): string | undefined {
    return undefined;
  }

  /** Warns once per distinct message (e.g. once per loss instance and head). */
  warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.logger.warn(message);
  }

  /**
   * Builds a component from its config: picks the type, validates the other options with the
   * component's schema (defaults filled in) and calls its factory with the parent's context.
   * `path` names the config location in errors.
   */
  build<R extends RegistryName>(registry: R, cfg: unknown, ...[options]: BuildArguments<R>): InstanceOf<R> {
    const configPath = options?.path ?? registry;
    if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) {
      throw new SegkitError(`${configPath}: expected a config object with a 'type', got ${Array.isArray(cfg) ? 'a list' : describeValue(cfg)}`, configPath);
    }
    const { type, ...rest } = cfg as Record<string, unknown>;
    if (typeof type !== 'string') {
      throw new SegkitError(`${joinPath(configPath, 'type')}: expected the name of a ${registry} type, got ${formatValue(type)}; registered: ${this.registries[registry].list().join(', ') || 'none'}`, configPath);
    }
    const definition = this.registries[registry].definition(type, joinPath(configPath, 'type'));
    const schema = definition.schema instanceof z.ZodObject ? (definition.schema as z.ZodObject).strict() : definition.schema;
    const parsed = validateOptions(schema, rest, configPath, type);
    try {
      return definition.create(parsed, this.context(configPath, (options?.parent ?? {}) as ParentOf<R>));
    } catch (error) {
      // A SegkitError already names its config path (children's included); anything else thrown by a
      // plugin's factory or constructor is named after the type and the config entry that built it.
      if (isSegkitError(error)) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      const wrapped = new SegkitError(`${configPath}: ${type} failed to build: ${reason.split('\n')[0]}`, configPath);
      wrapped.cause = error;
      throw wrapped;
    }
  }

  private context<P>(configPath: string, parent: P): BuildContext<P> {
    return {
      path: configPath,
      configDir: this.configDir,
      parent,
      logger: this.logger,
      warn: (message) => this.warnOnce(message),
      build: (registry, cfg, key, ...childParent) =>
        (this.build as (r: RegistryName, c: unknown, o: { path: string; parent?: unknown }) => never)(registry, cfg, { path: joinPath(configPath, String(key)), parent: childParent[0] }),
    };
  }

  backendProviders(): BackendProvider[] {
    return this.registries.backends.list().map((type) => this.build('backends', { type }));
  }

  /** Frees the active backend's device, if its provider holds one (WebGPU); call when done with the kernel. */
  async releaseBackend(): Promise<void> {
    const provider = this.backendProviders().find((p) => p.name === this.backend);
    await provider?.release?.();
  }
}

/** Groups the component records by registry and type; one type registered by two plugins is an error. */
function indexComponents(records: readonly ComponentRecord[]): Map<RegistryName, RegistryIndex> {
  const indexes = new Map<RegistryName, Map<string, ComponentRecord>>();
  for (const record of records) {
    let index = indexes.get(record.registry);
    if (!index) indexes.set(record.registry, (index = new Map()));
    const existing = index.get(record.definition.type);
    if (existing && existing.definition !== record.definition) {
      throw new SegkitError(
        `plugins: type '${record.definition.type}' of registry '${record.registry}' is registered twice: by ${existing.plugin.name}@${existing.plugin.version} and by ${record.plugin.name}@${record.plugin.version}; list only one of them in \`plugins\``,
      );
    }
    index.set(record.definition.type, record);
  }
  return indexes;
}


export interface RuntimeKernelOptions {
  /** Plugin objects (a browser bundle imports each package's `plugin` export, e.g. backbone-unet's). */
  plugins?: readonly SegkitPlugin[];
  /** A tfjs backend to activate (its package imported by the caller); default: whatever tfjs has active. */
  backend?: string;
  logger?: Logger;
}

/** A kernel with core's components plus the given plugin objects, no Node involved (browsers, workers, bundles). */
export async function createRuntimeKernel(options: RuntimeKernelOptions = {}): Promise<RuntimeKernel> {
  const kernel = new RuntimeKernel('.', options.logger);
  await kernel.loadPlugin(corePlugin);
  for (const plugin of options.plugins ?? []) {
    if (!isSegkitPlugin(plugin)) throw new SegkitError('plugins: a plugin object must have name, version and an inversify ContainerModule `module`');
    await kernel.loadPlugin(plugin);
  }
  if (options.backend && tf.getBackend() !== options.backend) {
    if (!(await tf.setBackend(options.backend))) throw new SegkitError(`backend: tfjs backend '${options.backend}' could not be initialized`, 'backend');
  }
  await tf.ready();
  kernel.backend = tf.getBackend();
  return kernel;
}
