import * as path from 'path';
import { installedManifestsNear } from '../../plugin-system/kernel';
import type { RegistryName } from '../../plugin-system/registries';
import { PyDict, PyList, type PyValue } from './values';

/** Where a `type` in an MMSegmentation config is looked up: a segkit registry, or one of core's nn builders. */
export type TypeCategory = RegistryName | 'norm' | 'activation' | 'conv' | 'upsample' | 'runner';

/** What segkit has, for mapping an MMSegmentation config: the kernel can answer, or the installed packages' declarations. */
export interface TypeCatalog {
  hasType(category: TypeCategory, type: string): boolean;
  /** The plugin package that provides it (listed in `plugins`), undefined when core itself has it. */
  providerOf(category: TypeCategory, type: string): string | undefined;
  /** The types segkit has in a category, for the error message. */
  typesOf(category: TypeCategory): string[];
}

/** Types core provides without a plugin (core-plugin.ts, nn/norm.ts, nn/activation.ts, engine/runner.ts). */
export const CORE_TYPES: { readonly [K in TypeCategory]?: readonly string[] } = {
  segmentors: ['EncoderDecoder'],
  backends: ['cpu'],
  norm: ['BN', 'BN2d', 'SyncBN', 'GN'],
  activation: ['ReLU', 'ReLU6', 'LeakyReLU', 'Sigmoid', 'Tanh'],
  conv: ['Conv2d', 'Conv'],
  runner: ['IterBasedRunner'],
};

type ProviderTable = ReadonlyMap<string, Readonly<Record<string, string>>>;
const providerTables = new Map<string, ProviderTable>();

/**
 * Type → package, per category, from the `segkit.provides` declarations of the `@segkit/*` packages
 * installed above the working directory or core itself (read once per working directory). A category
 * may be a registry or a layer builder's (a plugin declares e.g. `"upsample": ["InterpConv"]`).
 */
function installedProviders(): ProviderTable {
  const cwd = process.cwd();
  let table = providerTables.get(cwd);
  if (!table) {
    const byCategory = new Map<string, Record<string, string>>();
    for (const manifest of installedManifestsNear([cwd, path.resolve(__dirname)])) {
      for (const [category, types] of Object.entries(manifest.provides)) {
        const entries = byCategory.get(category) ?? {};
        for (const type of types) entries[type] ??= manifest.name;
        byCategory.set(category, entries);
      }
    }
    providerTables.set(cwd, (table = byCategory));
  }
  return table;
}

function providerTable(category: TypeCategory): Readonly<Record<string, string>> {
  return installedProviders().get(category) ?? {};
}

/** The built-in catalog: core's types plus those the installed plugin packages declare. */
export const defaultTypeCatalog: TypeCatalog = {
  hasType: (category, type) => CORE_TYPES[category]?.includes(type) === true || providerTable(category)[type] !== undefined,
  providerOf: (category, type) => (CORE_TYPES[category]?.includes(type) ? undefined : providerTable(category)[type]),
  typesOf: (category) => [...new Set([...(CORE_TYPES[category] ?? []), ...Object.keys(providerTable(category))])].sort(),
};

/** A catalog whose answers come from `override` where it has one (e.g. the kernel's registries). */
export function withOverrides(override: Partial<TypeCatalog> | undefined): TypeCatalog {
  if (!override) return defaultTypeCatalog;
  return {
    hasType: override.hasType ?? defaultTypeCatalog.hasType,
    providerOf: override.providerOf ?? defaultTypeCatalog.providerOf,
    typesOf: override.typesOf ?? defaultTypeCatalog.typesOf,
  };
}

export interface TypedNode {
  /** Config path of the dict holding the type, e.g. `model.decode_head.loss_decode.0`. */
  readonly path: string;
  readonly category: TypeCategory;
  readonly type: string;
  /** The key holding the type name: `type`, or `policy` (lr_config), or `constructor` (optimizer). */
  readonly key: string;
}

/** Keys whose value (a dict or a list of dicts) is a component of this category wherever they appear. */
const NESTED_CATEGORIES: Readonly<Record<string, TypeCategory>> = {
  backbone: 'backbones',
  neck: 'necks',
  decode_head: 'heads',
  auxiliary_head: 'heads',
  loss_decode: 'losses',
  sampler: 'samplers',
  norm_cfg: 'norm',
  act_cfg: 'activation',
  conv_cfg: 'conv',
  upsample_cfg: 'upsample',
  pipeline: 'transforms',
};

/** Only inside a component of the first category: `dataset` of RepeatDataset, `transforms` of MultiScaleFlipAug. */
const INNER_CATEGORIES: Readonly<Record<string, [TypeCategory, TypeCategory]>> = {
  dataset: ['datasets', 'datasets'],
  transforms: ['transforms', 'transforms'],
};

const TOP_LEVEL_CATEGORIES: Readonly<Record<string, TypeCategory>> = {
  model: 'segmentors',
  optimizer: 'optimizers',
  runner: 'runner',
  custom_hooks: 'hooks',
  norm_cfg: 'norm',
  act_cfg: 'activation',
  conv_cfg: 'conv',
};

/**
 * Every `type` of a config at a place MMSegmentation builds it from a registry (model parts, losses,
 * samplers, pipelines, datasets, hooks, optimizer, LR policy, runner) or from MMCV's layer builders
 * (`norm_cfg`, `act_cfg`, `conv_cfg`, `upsample_cfg`). Types elsewhere (e.g. `init_cfg`) are not listed.
 */
export function collectTypes(config: PyDict): TypedNode[] {
  const found: TypedNode[] = [];
  const record = (dict: PyDict, key: string, category: TypeCategory, path: string) => {
    const type = dict.get(key);
    if (typeof type === 'string') found.push({ path, category, type, key });
  };
  const visit = (value: PyValue, category: TypeCategory | undefined, path: string) => {
    if (value instanceof PyList) {
      value.items.forEach((item, index) => visit(item, category, `${path}.${index}`));
      return;
    }
    if (!(value instanceof PyDict)) return;
    if (category) record(value, 'type', category, path);
    for (const [key, child] of value.entries) {
      const childPath = path ? `${path}.${key}` : key;
      const inner = INNER_CATEGORIES[key];
      if (inner && inner[0] === category) visit(child, inner[1], childPath);
      else visit(child, NESTED_CATEGORIES[key], childPath);
    }
  };
  for (const [key, value] of config.entries) {
    if (key === 'data' && value instanceof PyDict) {
      for (const [split, dataset] of value.entries) {
        visit(dataset, ['train', 'val', 'test'].includes(split) ? 'datasets' : undefined, `data.${split}`);
      }
    } else if (key === 'log_config' && value instanceof PyDict) {
      for (const [child, hooks] of value.entries) visit(hooks, child === 'hooks' ? 'hooks' : undefined, `log_config.${child}`);
    } else if (key === 'lr_config' && value instanceof PyDict) {
      record(value, 'policy', 'lrSchedulers', 'lr_config');
      visit(value, undefined, key);
    } else if (key === 'optimizer' && value instanceof PyDict) {
      visit(value, 'optimizers', key);
      // MMCV builds every optimizer through a constructor, DefaultOptimizerConstructor unless named.
      if (value.has('constructor')) record(value, 'constructor', 'optimizerConstructors', 'optimizer');
      else if (value.has('type')) found.push({ path: 'optimizer', category: 'optimizerConstructors', type: 'DefaultOptimizerConstructor', key: 'constructor' });
    } else if (IMPLIED_HOOKS[key] && value instanceof PyDict) {
      // The runner adds these hooks itself when the section is present (engine/hooks.ts).
      found.push({ path: key, category: 'hooks', type: IMPLIED_HOOKS[key]!, key: 'type' });
      visit(value, undefined, key);
    } else {
      visit(value, TOP_LEVEL_CATEGORIES[key] ?? (key.endsWith('pipeline') ? 'transforms' : undefined), key);
    }
  }
  return found;
}

/** Top-level sections the runner turns into a hook of this type. */
const IMPLIED_HOOKS: Readonly<Record<string, string>> = { checkpoint_config: 'CheckpointHook', evaluation: 'EvalHook' };

const CATEGORY_NOUNS: Readonly<Record<TypeCategory, string>> = {
  backbones: 'backbone', necks: 'neck', heads: 'decode head', segmentors: 'segmentor', losses: 'loss', samplers: 'pixel sampler',
  optimizers: 'optimizer', optimizerConstructors: 'optimizer constructor', lrSchedulers: 'LR policy', datasets: 'dataset',
  transforms: 'transform', hooks: 'hook', metrics: 'metric', backends: 'backend', norm: 'norm layer', activation: 'activation',
  conv: 'conv layer', upsample: 'upsample layer', runner: 'runner',
};

/** One message listing every type segkit does not have, or undefined when it has them all. */
export function describeUnknownTypes(nodes: readonly TypedNode[], catalog: TypeCatalog): string | undefined {
  const unknown = nodes.filter((node) => !catalog.hasType(node.category, node.type));
  if (unknown.length === 0) return undefined;
  const byType = new Map<string, { node: TypedNode; paths: string[] }>();
  for (const node of unknown) {
    const key = `${node.category}\u0000${node.type}`;
    const entry = byType.get(key) ?? { node, paths: [] };
    entry.paths.push(`${node.path}.${node.key}`);
    byType.set(key, entry);
  }
  const lines = [...byType.values()].map(({ node, paths }) => {
    const where = paths.length > 3 ? `${paths.slice(0, 3).join(', ')} and ${paths.length - 3} more` : paths.join(', ');
    const has = catalog.typesOf(node.category);
    return `  ${CATEGORY_NOUNS[node.category]} '${node.type}' (${where}); segkit has: ${has.length ? has.join(', ') : 'none'}`;
  });
  return `segkit has no implementation of ${byType.size === 1 ? 'this type' : `these ${byType.size} types`}:\n${lines.join('\n')}`;
}

/** The plugin packages a config's types need, in the order the types appear. */
export function providersOf(nodes: readonly TypedNode[], catalog: TypeCatalog): string[] {
  const packages: string[] = [];
  for (const node of nodes) {
    if (!catalog.hasType(node.category, node.type)) continue;
    const provider = catalog.providerOf(node.category, node.type);
    if (provider && !packages.includes(provider)) packages.push(provider);
  }
  return packages;
}

/**
 * MMSegmentation's `SyncBN` becomes `BN`: segkit trains on one device, where SyncBN is BatchNorm over
 * the local batch. Returns the new value (shared sub-values stay shared) and the paths it changed.
 */
export function mapSyncBatchNorm(value: PyValue, path = ''): { value: PyValue; paths: string[] } {
  const paths: string[] = [];
  const seen = new Map<PyValue, PyValue>();
  const map = (node: PyValue, at: string): PyValue => {
    if (node instanceof PyList) {
      const items = node.items.map((item, index) => map(item, `${at}.${index}`));
      return items.every((item, index) => item === node.items[index]) ? node : new PyList(items, node.tuple);
    }
    if (!(node instanceof PyDict)) return node;
    const entries = new Map<string, PyValue>();
    let changed = false;
    for (const [key, child] of node.entries) {
      const childPath = at ? `${at}.${key}` : key;
      let mapped: PyValue;
      if (key === 'type' && child === 'SyncBN') {
        mapped = 'BN';
        paths.push(childPath);
      } else mapped = map(child, childPath);
      changed ||= mapped !== child;
      entries.set(key, mapped);
    }
    if (!changed) return node;
    // One mapped copy per shared dict (norm_cfg is usually shared by backbone and heads).
    const copy = seen.get(node) ?? new PyDict(entries);
    seen.set(node, copy);
    return copy;
  };
  return { value: map(value, path), paths };
}
