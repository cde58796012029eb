import * as fs from 'fs';
import * as path from 'path';
import { createRequire } from 'module';
import { SegkitError } from '../errors';
import { loadModule } from '../plugin-system/module-loader';
import type { KnownOptionsCheck, SegkitConfig } from './types';
import { loadMmsegConfig } from './mmseg';
import { describeValue } from './validation';
import { formatSyntaxError, syntaxErrorLocation } from './syntax-error';

export type ConfigDict = Record<string, unknown>;

const CONFIG_EXTENSIONS = ['.ts', '.js', '.cjs', '.mjs', '.json', '.py'];

/** A plain dict (not null, not a list): what a config section or component config must be. */
export function isDict(value: unknown): value is ConfigDict {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/**
 * Merges `child` into `base` the way MMSegmentation's configs do: dicts merge key by key,
 * anything else (lists included) replaces; `_delete_: true` in a child dict replaces the base dict.
 */
export function mergeConfig(base: ConfigDict, child: ConfigDict): ConfigDict {
  const merged: ConfigDict = clone(base);
  for (const [key, value] of Object.entries(child)) {
    if (isDict(value)) {
      const { _delete_: replace, ...rest } = value;
      merged[key] = !replace && isDict(merged[key]) ? mergeConfig(merged[key] as ConfigDict, rest) : stripDeleteMarkers(rest);
    } else {
      merged[key] = clone(value);
    }
  }
  return merged;
}

function stripDeleteMarkers(value: unknown): any {
  if (Array.isArray(value)) return value.map(stripDeleteMarkers);
  if (!isDict(value)) return clone(value);
  const out: ConfigDict = {};
  for (const [key, child] of Object.entries(value)) if (key !== '_delete_') out[key] = stripDeleteMarkers(child);
  return out;
}

async function readConfigFile(file: string, seen: readonly string[] = []): Promise<ConfigDict> {
  if (!fs.existsSync(file)) throw new SegkitError(`config: file not found: ${file}`);
  const extension = path.extname(file);
  if (!CONFIG_EXTENSIONS.includes(extension)) {
    throw new SegkitError(`config: ${file}: unsupported config file type '${extension}' (expected ${CONFIG_EXTENSIONS.join(', ')})`);
  }
  // An MMSegmentation .py config comes back with its own _base_ chain merged (MMCV's rules).
  if (extension === '.py') return loadMmsegConfig(file, { chain: seen, readOtherConfig: (base, chain) => readConfigTree(base, chain) });
  let loaded: unknown;
  try {
    if (extension === '.json') loaded = JSON.parse(fs.readFileSync(file, 'utf8'));
    else {
      const mod = (await loadModule(file)) as Record<string, unknown>;
      loaded = mod && 'default' in mod ? mod.default : mod;
    }
  } catch (error) {
    const syntax = syntaxErrorLocation(file, error);
    if (syntax) throw new SegkitError(`config: ${formatSyntaxError(syntax)}`);
    throw new SegkitError(`config: ${file} could not be read: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!isDict(loaded)) throw new SegkitError(`config: ${file} must export an object (export default defineConfig({...}))`);
  return clone(loaded);
}

/** Reads a config file and its `_base_` chain (paths relative to the file or package specifiers), parents first. */
export async function readConfigTree(file: string, seen: readonly string[] = []): Promise<ConfigDict> {
  const absolute = path.resolve(file);
  if (seen.includes(absolute)) throw new SegkitError(`config: _base_ cycle: ${[...seen, absolute].join(' -> ')}`);
  const own = await readConfigFile(absolute, seen);
  const bases = own._base_ === undefined ? [] : Array.isArray(own._base_) ? own._base_ : [own._base_];
  delete own._base_;
  let merged: ConfigDict = {};
  const plugins: unknown[] = [];
  for (const [index, base] of bases.entries()) {
    if (typeof base !== 'string') throw new SegkitError(`config: ${absolute}: _base_.${index}: expected a file path, got ${describeValue(base)}`);
    const baseFile = resolveBaseFile(base, absolute);
    const parent = await readConfigTree(baseFile, [...seen, absolute]);
    plugins.push(...resolvePluginPaths(parent.plugins, path.dirname(baseFile), absolute));
    merged = mergeConfig(merged, parent);
  }
  plugins.push(...resolvePluginPaths(own.plugins, path.dirname(absolute), absolute));
  const result = mergeConfig(merged, own);
  // Unlike other lists, `plugins` accumulate over the _base_ chain: every part names what it needs.
  if (plugins.length) result.plugins = [...new Set(plugins)];
  return result;
}

/**
 * Where a `_base_` entry points: a path relative to the config file (as MMSegmentation's configs
 * write them), or a package specifier such as `@segkit/configs/_base_/models/pspnet_r50-d8`, which
 * Node's module resolution finds from the config's folder, trying the config extensions in the
 * loader's order when the specifier has none.
 */
export function resolveBaseFile(base: string, configFile: string): string {
  const dir = path.dirname(configFile);
  const relative = path.resolve(dir, base);
  const isPath = base.startsWith('.') || path.isAbsolute(base);
  if (isPath || fs.existsSync(relative)) {
    if (!fs.existsSync(relative)) throw new SegkitError(`config: ${configFile}: _base_ file not found: ${base} (resolved to ${relative})`);
    return relative;
  }
  const candidates = CONFIG_EXTENSIONS.includes(path.extname(base)) ? [base] : [...CONFIG_EXTENSIONS.map((extension) => base + extension), base];
  const requireFromConfig = createRequire(configFile);
  for (const candidate of candidates) {
    try {
      const resolved = requireFromConfig.resolve(candidate);
      if (CONFIG_EXTENSIONS.includes(path.extname(resolved))) return resolved;
    } catch {
      // Not this spelling: try the next extension.
    }
  }
  const packageName = base.startsWith('@') ? base.split('/').slice(0, 2).join('/') : base.split('/')[0];
  const searched = requireFromConfig.resolve.paths(base) ?? [];
  const installedAt = searched.map((folder) => path.join(folder, packageName)).find((folder) => fs.existsSync(path.join(folder, 'package.json')));
  const why = installedAt
    ? `${packageName} is installed (${installedAt}) but has no such config file`
    : `the package ${packageName} is not installed in ${dir} or any parent folder's node_modules (npm install ${packageName})`;
  const tried = candidates.length > 1 ? `'${base}' with ${CONFIG_EXTENSIONS.join(', ')} and as written` : `'${base}'`;
  throw new SegkitError(`config: ${configFile}: _base_ '${base}' not found: ${why}; tried ${tried}, with Node's module resolution from ${dir}`);
}

/** A base's relative plugin paths are relative to the base file: make them absolute before merging. */
function resolvePluginPaths(plugins: unknown, dir: string, file: string): unknown[] {
  if (plugins === undefined) return [];
  if (!Array.isArray(plugins)) throw new SegkitError(`config: ${file}: plugins: expected a list of package names or file paths, got ${describeValue(plugins)}`);
  return plugins.map((p) => (typeof p === 'string' && p.startsWith('.') ? path.resolve(dir, p) : p));
}

/** Parses one `--cfg-options` value: JSON when it parses (numbers, booleans, lists, objects), else the raw string. */
export function parseOverrideValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    if (/^\(.*\)$/.test(raw)) return parseOverrideValue(`[${raw.slice(1, -1)}]`);
    return raw;
  }
}

/** Applies `a.b.c=value` overrides; numeric segments index lists (`a.0.b`). */
export function applyOverrides(config: ConfigDict, overrides: readonly string[]): ConfigDict {
  const result = clone(config);
  for (const override of overrides) {
    const eq = override.indexOf('=');
    if (eq <= 0) throw new SegkitError(`--cfg-options: expected key=value, got '${override}'`);
    const keys = override.slice(0, eq).split('.');
    const value = parseOverrideValue(override.slice(eq + 1));
    let node: any = result;
    for (const [i, key] of keys.entries()) {
      const last = i === keys.length - 1;
      if (Array.isArray(node)) {
        const index = Number(key);
        if (!Number.isInteger(index) || index < 0 || index >= node.length) {
          throw new SegkitError(`--cfg-options ${override}: '${keys.slice(0, i).join('.')}' is a list of ${node.length}; '${key}' is not a valid index`);
        }
        if (last) node[index] = value;
        else node = node[index];
        continue;
      }
      if (!isDict(node)) throw new SegkitError(`--cfg-options ${override}: '${keys.slice(0, i).join('.')}' is not a dict or list`);
      if (last) node[key] = value;
      else {
        if (node[key] === undefined) node[key] = {};
        node = node[key];
      }
    }
  }
  return result;
}

export interface LoadedConfig extends ConfigDict {
  /** Absolute path of the config file it was read from. */
  readonly filename?: string;
}

/** Loads a config file with its bases and command-line overrides applied. */
export async function loadConfig(file: string, overrides: readonly string[] = []): Promise<LoadedConfig> {
  const config = applyOverrides(await readConfigTree(file), overrides);
  Object.defineProperty(config, 'filename', { value: path.resolve(file), enumerable: false });
  return config as LoadedConfig;
}

/**
 * Identity at run time; gives configs their types. Plugins extend them through declaration merging;
 * a `type` no declaration names keeps the generic shape, a declared one is checked against its
 * declaration (`KnownOptionsCheck`). While an editor completes the argument, `C` is `SegkitConfig` itself
 * and the check steps aside, so completion sees the plain config types.
 */
export function defineConfig<C extends SegkitConfig>(config: C & ([SegkitConfig] extends [C] ? unknown : KnownOptionsCheck<C, SegkitConfig>)): C {
  return config;
}
