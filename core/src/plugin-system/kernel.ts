import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'fs';
import * as path from 'path';
import { SegkitError } from '../errors';
import type { Logger, RegistryName } from './registries';
import { isSegkitPlugin, type SegkitPlugin } from './plugin';
import { formatSyntaxError, syntaxErrorLocation } from '../config/syntax-error';
import { selectBackend } from './backend';
import { RuntimeKernel } from './runtime-kernel';
import { loadModule } from './module-loader';
import { configTypeRequirements } from './config-types';
import { corePlugin } from './core-plugin';
import { assertSingleTfjs } from './tfjs-copies';

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

export { Registry, RuntimeKernel } from './runtime-kernel';
export type { RegisteredComponent, Registries, BuildOptions } from './runtime-kernel';

/**
 * The segkit kernel in Node: the runtime kernel plus plugins resolved by package name or file path
 * (`resolvePlugin`) and the installed packages that declare the types a config names (`ensureProviders`).
 */
export class Kernel extends RuntimeKernel {
  /** Packages `ensureProviders` loaded because an installed manifest declares a type the config names. */
  readonly autoLoadedPlugins: string[] = [];
  /** Installed provider packages that failed to load, with the reason (for the unknown-type error). */
  private readonly providerFailures = new Map<string, string>();

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
  protected override providerHint(registry: RegistryName, type: string): string | undefined {
    const providers = installedManifestsNear(this.searchDirs()).filter((manifest) => manifest.provides[registry]?.includes(type));
    if (providers.length === 0) return undefined;
    const failed = providers.find((manifest) => this.providerFailures.has(manifest.name));
    if (failed) return `it is provided by ${failed.name}, which is installed but could not be loaded (${this.providerFailures.get(failed.name)})`;
    const names = providers.map((manifest) => manifest.name).join(' and ');
    return `it is provided by ${names}, which is installed but not loaded: list it in \`plugins\``;
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
    const syntax = syntaxErrorLocation(resolved, error);
    if (syntax) throw new SegkitError(`plugins: plugin '${spec}' failed to load: ${formatSyntaxError(syntax)}`);
    // Node appends a multi-line "Require stack"; its first line says what went wrong.
    const reason = String((error as Error).message).split('\n')[0];
    throw new SegkitError(`plugins: plugin '${spec}' failed to load: ${reason}`);
  }
  // A plugin that brought its own TensorFlow.js copy is named here, before its kernels go missing later.
  assertSingleTfjs();
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
  // Backend providers load their modules lazily (tfjs-node brings its own tfjs dependencies).
  assertSingleTfjs();
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
        const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { version?: string; main?: string; segkit?: { commands?: unknown; provides?: unknown; plugin?: unknown } };
        // `"segkit": { "plugin": false }`: a segkit library that is no kernel plugin (e.g. @segkit/web, for browsers).
        if (manifest.segkit?.plugin === false) continue;
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
