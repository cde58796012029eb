import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'fs';
import * as path from 'path';
import { Container } from 'inversify';
import { z } from 'zod';
import { SegkitError, joinPath, nearestName } from './errors';
import {
  REGISTRY_NAMES,
  REGISTRY_TOKENS,
  type BuildContext,
  type ComponentDefinition,
  type Logger,
  type RegistryName,
} from './registries';
import { isSegkitPlugin, type SegkitPlugin } from './plugin';
import { validateOptions } from './validation';
import { selectBackend, type BackendProvider } from './backend';
import { EventBus } from './bus';
import { loadModule } from './module-loader';
import { KNOWN_PROVIDERS } from './known-plugins';

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

/** A typed view of one registry: which types exist and how to build one from a config. */
export class Registry<T = unknown> {
  private readonly entries = new Map<string, { definition: ComponentDefinition<any, T>; plugin: SegkitPlugin }>();

  constructor(readonly name: RegistryName) {}

  /** @internal used by the kernel while loading plugins. */
  add(definition: ComponentDefinition<any, T>, plugin: SegkitPlugin): void {
    const existing = this.entries.get(definition.type);
    if (existing && existing.definition !== definition) {
      throw new SegkitError(
        `plugins: type '${definition.type}' of registry '${this.name}' is registered twice: by ${existing.plugin.name}@${existing.plugin.version} and by ${plugin.name}@${plugin.version}; list only one of them in \`plugins\``,
      );
    }
    this.entries.set(definition.type, { definition, plugin });
  }

  list(): string[] {
    return [...this.entries.keys()].sort();
  }

  has(type: string): boolean {
    return this.entries.has(type);
  }

  describe(): RegisteredComponent[] {
    return this.list().map((type) => {
      const { definition, plugin } = this.entries.get(type)!;
      return { type, plugin: plugin.name, version: plugin.version, description: definition.description };
    });
  }

  definition(type: string, configPath = 'type'): ComponentDefinition<any, T> {
    const entry = this.entries.get(type);
    if (entry) return entry.definition;
    const known = this.list();
    const nearest = nearestName(type, known);
    const provider = KNOWN_PROVIDERS[this.name]?.[type];
    const parts = [
      `${configPath}: unknown ${this.name} type '${type}'`,
      nearest ? `did you mean '${nearest}'?` : undefined,
      `registered: ${known.length ? known.join(', ') : 'none'}`,
      provider ? `it is provided by ${provider}: is its plugin listed in \`plugins\`?` : 'is its plugin listed in `plugins`?',
    ];
    throw new SegkitError(parts.filter(Boolean).join('; '), configPath);
  }
}

export type Registries = { readonly [K in RegistryName]: Registry };

function consoleLogger(): Logger {
  return { info: (m) => console.log(m), warn: (m) => console.warn(`warning: ${m}`) };
}

/**
 * The segkit kernel: an inversify container holding the plugins' component definitions,
 * one typed registry per component kind, the event bus and the active tfjs backend.
 */
export class Kernel {
  readonly container = new Container();
  readonly registries: Registries;
  readonly plugins: SegkitPlugin[] = [];
  readonly bus = new EventBus();
  readonly logger: Logger;
  backend = 'cpu';
  private readonly warned = new Set<string>();

  constructor(readonly configDir: string, logger?: Logger) {
    this.logger = logger ?? consoleLogger();
    this.registries = Object.fromEntries(REGISTRY_NAMES.map((name) => [name, new Registry(name)])) as unknown as Registries;
  }

  /** Loads one plugin into the container and records which types it brought. */
  async loadPlugin(plugin: SegkitPlugin): Promise<void> {
    if (this.plugins.some((p) => p === plugin)) return;
    const before = new Map(REGISTRY_NAMES.map((name) => [name, new Set(this.getAllBound(name))]));
    await this.container.load(plugin.module);
    this.plugins.push(plugin);
    for (const name of REGISTRY_NAMES) {
      const seen = before.get(name)!;
      for (const definition of this.getAllBound(name)) {
        if (!seen.has(definition)) this.registries[name].add(definition, plugin);
      }
    }
  }

  private getAllBound(name: RegistryName): ComponentDefinition[] {
    const token = REGISTRY_TOKENS[name];
    return this.container.isBound(token) ? this.container.getAll(token) : [];
  }

  /** Warns once per distinct message (e.g. once per loss instance and head). */
  warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.logger.warn(message);
  }

  /**
   * Builds a component from its config: picks the type, validates the other options with the
   * component's schema (defaults filled in) and calls its factory. `path` names the config location in errors.
   */
  build<T = unknown>(registry: RegistryName, cfg: unknown, options: { path?: string; extra?: Record<string, unknown> } = {}): T {
    const configPath = options.path ?? registry;
    if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) {
      throw new SegkitError(`${configPath}: expected a config object with a 'type', got ${Array.isArray(cfg) ? 'a list' : JSON.stringify(cfg)}`, configPath);
    }
    const { type, ...rest } = cfg as Record<string, unknown>;
    if (typeof type !== 'string') {
      throw new SegkitError(`${joinPath(configPath, 'type')}: expected the name of a ${registry} type, got ${JSON.stringify(type)}; registered: ${this.registries[registry].list().join(', ') || 'none'}`, configPath);
    }
    const definition = this.registries[registry].definition(type, joinPath(configPath, 'type'));
    const schema = definition.schema instanceof z.ZodObject ? (definition.schema as z.ZodObject).strict() : definition.schema;
    const parsed = validateOptions(schema, rest, configPath, type);
    const context = this.context(configPath, options.extra ?? {});
    return definition.create(parsed, context) as T;
  }

  private context(configPath: string, extra: Record<string, unknown>): BuildContext {
    return {
      path: configPath,
      configDir: this.configDir,
      extra,
      logger: this.logger,
      warn: (message) => this.warnOnce(message),
      build: (registry, cfg, key, childExtra) => this.build(registry, cfg, { path: joinPath(configPath, String(key)), extra: childExtra ?? {} }),
    };
  }

  backendProviders(): BackendProvider[] {
    return this.registries.backends.list().map((type) => this.build<BackendProvider>('backends', { type }));
  }
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

/** Names of the `@segkit/*` plugin packages installed in node_modules folders above `fromDir`. */
export function discoverInstalledPlugins(fromDir: string): string[] {
  const names = new Set<string>();
  for (let dir = path.resolve(fromDir); ; dir = path.dirname(dir)) {
    const scope = path.join(dir, 'node_modules', '@segkit');
    if (fs.existsSync(scope)) {
      for (const entry of fs.readdirSync(scope)) {
        const manifest = path.join(scope, entry, 'package.json');
        if (entry !== 'core' && fs.existsSync(manifest) && fs.existsSync(path.join(scope, entry, JSON.parse(fs.readFileSync(manifest, 'utf8')).main ?? 'index.js'))) {
          names.add(`@segkit/${entry}`);
        }
      }
    }
    if (path.dirname(dir) === dir) break;
  }
  return [...names].sort();
}
