import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'fs';
import * as path from 'path';
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
import { formatSyntaxError, syntaxErrorLocation } from '../config/syntax-error';
import { selectBackend, type BackendProvider } from './backend';
import { EventBus } from '../bus';
import { loadModule } from './module-loader';
import { configTypeRequirements } from './config-types';

export type PluginSpec = string | SegkitPlugin;

export interface KernelOptions {
  /** Package names, file paths (relative to `configDir`) or plugin objects. */
  plugins?: readonly PluginSpec[];
  /** 'auto' (default) or a tfjs backend name. */
  backend?: string;
  /** Where relative plugin paths and package names are resolved first (the config file's folder). */
  configDir?: string;
  logger?: Logger;
}

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
 * The segkit kernel. Its inversify container is the composition root: the event bus and the logger are
 * services bound in it, and every plugin's ContainerModule binds component records and contributions
 * (multi-bindings) that the registries and the CLI read. One typed registry per component kind; `build`
 * turns a config into a component.
 */
export class Kernel {
  private readonly container = new Container();
  readonly registries: Registries;
  readonly plugins: SegkitPlugin[] = [];
  backend = 'cpu';
  private indexes = new Map<RegistryName, RegistryIndex>();
  private readonly warned = new Set<string>();
  /** Packages `ensureProviders` loaded because an installed manifest declares a type the config names. */
  readonly autoLoadedPlugins: string[] = [];
  /** Installed provider packages that failed to load, with the reason (for the unknown-type error). */
  private readonly providerFailures = new Map<string, string>();

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

  /**
   * Loads, for every type `config` names that no loaded plugin registers, the installed package whose
   * package.json declares it (`"segkit": { "provides": { "<registry>": ["Type"] } }`), and logs it. A type
   * no installed package declares is left to `build`, whose error names the nearest registered type.
   */
  async ensureProviders(config: Record<string, unknown>): Promise<void> {
    const manifests = installedManifestsNear(this.searchDirs());
    for (const { registry, type } of configTypeRequirements(config)) {
      if (this.registries[registry].has(type)) continue;
      const manifest = manifests.find((candidate) => candidate.provides[registry]?.includes(type));
      if (!manifest || this.providerFailures.has(manifest.name) || this.plugins.some((p) => p.name === manifest.name)) continue;
      let plugin: SegkitPlugin;
      try {
        plugin = await resolvePlugin(manifest.name, this.configDir);
      } catch (error) {
        // Reported by `build` if the type is built at all (a test-only pipeline step may never be).
        this.providerFailures.set(manifest.name, (error as Error).message.replace(/^plugins: /, ''));
        continue;
      }
      await this.loadPlugin(plugin);
      this.autoLoadedPlugins.push(manifest.name);
      this.logger.info(`loaded ${manifest.name}@${manifest.version} for ${registry} type '${type}'`);
    }
  }

  /** Where installed packages are looked for: the config's folder, the working directory, core's own install. */
  private searchDirs(): string[] {
    return [this.configDir, process.cwd(), __dirname];
  }

  /** The end of an unknown-type error when an installed package declares the type; undefined otherwise. */
  private providerHint(registry: RegistryName, type: string): string | undefined {
    const providers = installedManifestsNear(this.searchDirs()).filter((manifest) => manifest.provides[registry]?.includes(type));
    if (providers.length === 0) return undefined;
    const failed = providers.find((manifest) => this.providerFailures.has(manifest.name));
    if (failed) return `it is provided by ${failed.name}, which is installed but could not be loaded (${this.providerFailures.get(failed.name)})`;
    const names = providers.map((manifest) => manifest.name).join(' and ');
    return `it is provided by ${names}, which is installed but not loaded: list it in \`plugins\``;
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

/** Resolves a plugin given by package name, file path or object. */
export async function resolvePlugin(spec: PluginSpec, configDir: string): Promise<SegkitPlugin> {
  if (typeof spec !== 'string') {
    if (!isSegkitPlugin(spec)) throw new SegkitError('plugins: a plugin object must have name, version and an inversify ContainerModule `module`');
    return spec;
  }
  const isPath = spec.startsWith('.') || path.isAbsolute(spec);
  let resolved: string | undefined;
  if (isPath) {
    resolved = path.resolve(configDir, spec);
  } else {
    for (const base of [configDir, process.cwd(), __dirname]) {
      try {
        resolved = require.resolve(spec, { paths: [base] });
        break;
      } catch {
        // try the next base folder
      }
    }
    if (!resolved) {
      const searched = [...new Set([configDir, process.cwd()])].join(' and ');
      throw new SegkitError(`plugins: cannot find plugin package '${spec}' (looked from ${searched}); install it with \`npm install ${spec}\``);
    }
  }
  let exported: Record<string, unknown>;
  try {
    exported = (await loadModule(resolved)) as Record<string, unknown>;
  } catch (error) {
    if (isPath && !fs.existsSync(resolved) && !fs.existsSync(`${resolved}.js`) && !fs.existsSync(`${resolved}.ts`)) {
      throw new SegkitError(`plugins: cannot find plugin file '${spec}' (resolved to ${resolved})`);
    }
    const syntax = syntaxErrorLocation(resolved, error);
    if (syntax) throw new SegkitError(`plugins: plugin '${spec}' failed to load: ${formatSyntaxError(syntax)}`);
    // Node appends a multi-line "Require stack"; its first line says what went wrong.
    const reason = String((error as Error).message).split('\n')[0];
    throw new SegkitError(`plugins: plugin '${spec}' failed to load: ${reason}`);
  }
  const candidate = exported.plugin ?? (exported.default as Record<string, unknown> | undefined)?.plugin ?? exported.default;
  if (!isSegkitPlugin(candidate)) {
    throw new SegkitError(`plugins: '${spec}' does not export a segkit plugin (expected \`export const plugin = definePlugin({...})\` with name, version and module)`);
  }
  return candidate;
}

/** Builds a kernel with core's components plus the listed plugins, and activates a backend. */
export async function createKernel(options: KernelOptions = {}): Promise<Kernel> {
  const configDir = options.configDir ?? process.cwd();
  // Silences tfjs's "install tfjs-node" banner (segkit chooses and logs its backend itself).
  tf.env().set('IS_TEST', true);
  const kernel = new Kernel(configDir, options.logger);
  const { corePlugin } = await import('./core-plugin');
  await kernel.loadPlugin(corePlugin);
  for (const spec of options.plugins ?? []) {
    await kernel.loadPlugin(await resolvePlugin(spec, configDir));
  }
  // 'auto' means the fastest backend *installed*: backend plugins need not be listed in `plugins`.
  const requested = options.backend ?? 'auto';
  if (requested === 'auto' || !kernel.registries.backends.has(requested)) {
    for (const name of discoverInstalledPlugins(configDir).filter((n) => n.startsWith('@segkit/backend-'))) {
      if (kernel.plugins.some((p) => p.name === name)) continue;
      await kernel.loadPlugin(await resolvePlugin(name, configDir));
    }
  }
  const choice = await selectBackend(requested, kernel.backendProviders(), kernel.logger, (message) => {
    throw new SegkitError(message, 'backend');
  });
  kernel.backend = choice.name;
  return kernel;
}

/** What an installed `@segkit/*` package declares about itself in package.json's `segkit` field. */
export interface PluginManifest {
  readonly name: string;
  readonly version: string;
  /** Top-level `segkit` commands it contributes. */
  readonly commands: readonly string[];
  /** The component types it registers, by registry (or other category, e.g. `upsample` layers): `segkit.provides`. */
  readonly provides: Readonly<Record<string, readonly string[]>>;
}

/** The `@segkit/*` plugin packages installed (and built) in node_modules folders above `fromDir`, nearest first. */
export function installedPluginManifests(fromDir: string): PluginManifest[] {
  const manifests = new Map<string, PluginManifest>();
  for (let dir = path.resolve(fromDir); ; dir = path.dirname(dir)) {
    const scope = path.join(dir, 'node_modules', '@segkit');
    if (fs.existsSync(scope)) {
      for (const entry of fs.readdirSync(scope)) {
        const name = `@segkit/${entry}`;
        const manifestFile = path.join(scope, entry, 'package.json');
        if (entry === 'core' || manifests.has(name) || !fs.existsSync(manifestFile)) continue;
        const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { version?: string; main?: string; segkit?: { commands?: unknown; provides?: unknown } };
        if (!fs.existsSync(path.join(scope, entry, manifest.main ?? 'index.js'))) continue;
        manifests.set(name, { name, version: manifest.version ?? '0.0.0', commands: stringList(manifest.segkit?.commands), provides: providesOf(manifest.segkit?.provides) });
      }
    }
    if (path.dirname(dir) === dir) break;
  }
  return [...manifests.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** A manifest's `segkit.provides`, malformed entries dropped (a broken third-party manifest must not break every run). */
function providesOf(value: unknown): Record<string, string[]> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).map(([category, types]) => [category, stringList(types)]));
}

/** The installed manifests seen from several folders, the first folder's copy of a package winning. */
export function installedManifestsNear(dirs: readonly string[]): PluginManifest[] {
  const manifests = new Map<string, PluginManifest>();
  for (const dir of dirs) {
    for (const manifest of installedPluginManifests(dir)) if (!manifests.has(manifest.name)) manifests.set(manifest.name, manifest);
  }
  return [...manifests.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Names of the `@segkit/*` plugin packages installed in node_modules folders above `fromDir`. */
export function discoverInstalledPlugins(fromDir: string): string[] {
  return installedPluginManifests(fromDir).map((manifest) => manifest.name);
}
