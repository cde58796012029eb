import * as fs from 'fs';
import * as path from 'path';
import { SegkitError } from '../../errors';
import { evaluateModule, type EvaluatedModule } from './evaluator';
import { parseModule, type Assignment } from './parser';
import { syntaxError } from './tokenizer';
import { mapCustomImports, type CustomImportsResult } from './custom-imports';
import { collectTypes, describeUnknownTypes, mapSyncBatchNorm, providersOf, withOverrides, type TypeCatalog } from './types';
import { BaseReference, PyDict, PyList, fromPlain, pyTruthy, pyTypeName, setOwn, toPlain, type PlainValue, type PyValue } from './values';

export type ConfigObject = Record<string, unknown>;

export interface MmsegConfigOptions {
  /**
   * Reads a `_base_` that is not a `.py` file (a segkit `.ts`/`.js`/`.json` config) with its own bases;
   * `chain` is the list of files that led to it, for cycle errors. core's loadConfig passes its own reader.
   */
  readOtherConfig?: (file: string, chain: readonly string[]) => Promise<ConfigObject>;
  /** Files that led to this one (cycle detection across `.ts` and `.py` bases). */
  chain?: readonly string[];
  /** Receives notices (SyncBN mapped to BN, custom_imports skipped under allow_failed_imports). Default: console.warn. */
  onNotice?: (message: string) => void;
  /** Which types segkit has; the kernel can answer `hasType` from its registries. Default: the built-in table. */
  types?: Partial<TypeCatalog>;
  /** More Python module → segkit plugin entries for `custom_imports`. */
  moduleMap?: Readonly<Record<string, string>>;
}

export interface MmsegBase {
  /** As written in `_base_`. */
  readonly spec: string;
  readonly file: string;
  /** Set when the base is a `.py` file. */
  readonly py?: MmsegFile;
  /** Set when the base is a segkit config (read by `readOtherConfig`). */
  readonly other?: ConfigObject;
}

/** One `.py` file of a `_base_` chain, evaluated: what MMCV's `Config._file2dict` computes for it, and more. */
export interface MmsegFile {
  readonly file: string;
  readonly evaluated: EvaluatedModule;
  /** Its module-level names (MMCV keeps every name not starting with `__`), `_base_` popped, `{{_base_.x}}` substituted. */
  readonly own: PyDict;
  readonly bases: readonly MmsegBase[];
  /** `_base_` as written: one path or a list of paths. */
  readonly baseForm: 'none' | 'single' | 'list';
  /** The base value each `{{_base_.x}}` of the file stands for. */
  readonly resolved: ReadonlyMap<BaseReference, PyValue>;
  readonly customImports?: CustomImportsResult;
  /** segkit plugins this file's own content needs (custom_imports, then the providers of its types). */
  readonly ownPlugins: readonly string[];
  /** MMCV's merge of the bases and this file. */
  readonly merged: PyDict;
  /** Plugins over the chain, accumulated as core's loadConfig does for `.ts` chains. */
  readonly plugins: readonly string[];
}

interface LoadContext {
  readonly options: MmsegConfigOptions;
  readonly catalog: TypeCatalog;
  readonly notices: string[];
  readonly files: Map<string, MmsegFile>;
}

/** MMCV's `Config` refuses these keys. */
const RESERVED_KEYS = ['filename', 'text', 'pretty_text'];

/** Loads a `.py` config and its `_base_` chain; `files` lists every `.py` file of the chain, the root first. */
export async function loadMmsegTree(file: string, options: MmsegConfigOptions = {}): Promise<{ root: MmsegFile; files: MmsegFile[]; notices: string[] }> {
  const context: LoadContext = { options, catalog: withOverrides(options.types), notices: [], files: new Map() };
  const root = await loadFile(path.resolve(file), options.chain ?? [], context);
  return { root, files: [root, ...[...context.files.values()].filter((f) => f !== root)], notices: context.notices };
}

/**
 * What MMCV 1.x's `Config.fromfile(file)` gives: the bases merged (dicts recursively, lists replaced,
 * `_delete_=True` replacing), every module-level name a key, `custom_imports` and `SyncBN` left as written.
 */
export async function readMmsegConfig(file: string, options: MmsegConfigOptions = {}): Promise<Record<string, PlainValue>> {
  const { root } = await loadMmsegTree(file, options);
  return toPlain(root.merged) as Record<string, PlainValue>;
}

/**
 * A `.py` config as a segkit config: MMCV's merge result with `SyncBN` mapped to `BN` (one notice),
 * `custom_imports` and the providers of its types as `plugins`, leftover `_delete_` markers dropped.
 * Types segkit does not have are one error listing them.
 */
export async function loadMmsegConfig(file: string, options: MmsegConfigOptions = {}): Promise<ConfigObject> {
  const { root, notices } = await loadMmsegTree(file, options);
  const config = toSegkitConfig(root, withOverrides(options.types), notices);
  const notify = options.onNotice ?? ((message: string) => console.warn(`warning: ${message}`));
  for (const notice of notices) notify(notice);
  return config;
}

/** The segkit form of a loaded tree's root (see loadMmsegConfig); pushes its notices. */
export function toSegkitConfig(root: MmsegFile, catalog: TypeCatalog, notices: string[]): ConfigObject {
  const { value, paths } = mapSyncBatchNorm(root.merged);
  const mapped = value as PyDict;
  const unknown = describeUnknownTypes(collectTypes(mapped), catalog);
  if (unknown) throw new SegkitError(`config: ${root.file}: ${unknown}`);
  if (paths.length) {
    const where = paths.length > 2 ? `${paths.slice(0, 2).join(', ')} and ${paths.length - 2} more` : paths.join(', ');
    notices.push(`config: ${root.file}: SyncBN is mapped to BN (${where}): segkit trains on one device, where SyncBN is BatchNorm over the local batch`);
  }
  const plain = stripDeleteMarkers(toPlain(mapped)) as ConfigObject;
  delete plain.custom_imports;
  delete plain.plugins;
  return root.plugins.length ? { plugins: [...root.plugins], ...plain } : plain;
}

async function loadFile(file: string, chain: readonly string[], context: LoadContext): Promise<MmsegFile> {
  if (chain.includes(file)) throw new SegkitError(`config: _base_ cycle: ${[...chain, file].join(' -> ')}`);
  if (!fs.existsSync(file)) throw new SegkitError(`config: file not found: ${file}`);
  const evaluated = evaluateModule(parseModule(fs.readFileSync(file, 'utf8'), file));
  const statementOf = (name: string) => evaluated.module.statements.find((s) => s.target === name)!;
  const at = (statement: Assignment, message: string) => syntaxError({ file, line: statement.line, column: statement.column }, message);

  const namespace = new Map([...evaluated.namespace].filter(([name]) => !name.startsWith('__')));
  const baseValue = namespace.get('_base_');
  namespace.delete('_base_');
  let specs: string[] = [];
  let baseForm: MmsegFile['baseForm'] = 'none';
  if (baseValue !== undefined) {
    if (typeof baseValue === 'string') {
      specs = [baseValue];
      baseForm = 'single';
    } else if (baseValue instanceof PyList && !baseValue.tuple && baseValue.items.every((item) => typeof item === 'string')) {
      specs = baseValue.items as string[];
      baseForm = 'list';
    } else {
      throw at(statementOf('_base_'), `_base_: expected a file path or a list of file paths, got ${pyTypeName(baseValue)}`);
    }
  }

  const bases: MmsegBase[] = [];
  for (const spec of specs) {
    const baseFile = path.resolve(path.dirname(file), spec);
    if (!fs.existsSync(baseFile)) throw at(statementOf('_base_'), `_base_ file not found: ${spec} (resolved to ${baseFile})`);
    if (path.extname(baseFile) === '.py') {
      const known = context.files.get(baseFile);
      bases.push({ spec, file: baseFile, py: known ?? (await loadFile(baseFile, [...chain, file], context)) });
    } else {
      if (!context.options.readOtherConfig) throw at(statementOf('_base_'), `_base_ ${spec}: only .py bases can be read here`);
      bases.push({ spec, file: baseFile, other: await context.options.readOtherConfig(baseFile, [...chain, file]) });
    }
  }

  // MMCV: bases may not share top-level keys; their union is what the file inherits.
  const baseMerged = new PyDict();
  const owners = new Map<string, string>();
  for (const base of bases) {
    const dict = base.py ? base.py.merged : (fromPlain(base.other) as PyDict);
    const duplicates = [...dict.entries.keys()].filter((key) => baseMerged.has(key));
    if (duplicates.length) {
      const detail = duplicates.map((key) => `${key} (${owners.get(key)} and ${base.spec})`).join(', ');
      throw at(statementOf('_base_'), `_base_: the same key is defined by more than one base, which MMCV does not allow: ${detail}`);
    }
    for (const [key, value] of dict.entries) {
      baseMerged.entries.set(key, value);
      owners.set(key, base.spec);
    }
  }

  const resolved = new Map<BaseReference, PyValue>();
  for (const reference of evaluated.references) {
    const where = { file, line: reference.node.line, column: reference.node.column };
    const name = `{{_base_.${reference.path.join('.')}}}`;
    if (baseValue === undefined) throw syntaxError(where, `${name} is used in a file without _base_`);
    let value: PyValue = baseMerged;
    for (const [index, key] of reference.path.entries()) {
      if (!(value instanceof PyDict) || !value.has(key)) {
        const parent = index === 0 ? 'the bases' : `_base_.${reference.path.slice(0, index).join('.')}`;
        const why = value instanceof PyDict ? `has no key '${key}'` : `is a ${pyTypeName(value)}, not a dict`;
        throw syntaxError(where, `${name}: ${parent} ${why}`);
      }
      value = value.get(key)!;
    }
    resolved.set(reference, value);
  }
  const own = substitute(new PyDict(namespace), resolved) as PyDict;
  const merged = specs.length ? mergeInto(own, baseMerged, '', (key, message) => at(statementOf(key), message)) : own;
  if (chain.length === 0) {
    const reserved = RESERVED_KEYS.filter((key) => merged.has(key));
    if (reserved.length) throw new SegkitError(`config: ${file}: ${reserved.join(', ')} is reserved by MMCV's Config and cannot be a config key`);
  }

  let customImports: CustomImportsResult | undefined;
  const ownPlugins: string[] = [];
  const customValue = own.get('custom_imports');
  if (customValue !== undefined) {
    const result = mapCustomImports(customValue, path.dirname(file), context.options.moduleMap);
    if (typeof result === 'string') throw at(statementOf('custom_imports'), result);
    customImports = result;
    if (result.unmapped.length && !result.allowFailed) {
      throw at(
        statementOf('custom_imports'),
        `custom_imports: segkit has no plugin for ${result.unmapped.map((m) => `'${m}'`).join(', ')}; write the module as a segkit plugin and name its package or file in custom_imports`,
      );
    }
    if (result.unmapped.length) context.notices.push(`config: ${file}: custom_imports ${result.unmapped.join(', ')} skipped (no segkit plugin; allow_failed_imports=True)`);
    ownPlugins.push(...result.plugins);
  }
  const pluginsValue = own.get('plugins');
  if (pluginsValue instanceof PyList) {
    for (const item of pluginsValue.items) if (typeof item === 'string') ownPlugins.push(item.startsWith('.') ? path.resolve(path.dirname(file), item) : item);
  }
  ownPlugins.push(...providersOf(collectTypes(mapSyncBatchNorm(own).value as PyDict), context.catalog));
  const plugins: string[] = [];
  for (const base of bases) {
    const inherited = base.py ? base.py.plugins : Array.isArray(base.other?.plugins) ? (base.other!.plugins as unknown[]) : [];
    plugins.push(...inherited.filter((p): p is string => typeof p === 'string'));
  }
  plugins.push(...ownPlugins);

  const loaded: MmsegFile = {
    file,
    evaluated,
    own,
    bases,
    baseForm,
    resolved,
    customImports,
    ownPlugins: [...new Set(ownPlugins)],
    merged,
    plugins: [...new Set(plugins)],
  };
  if (!context.files.has(file)) context.files.set(file, loaded);
  return loaded;
}

/** Replaces `{{_base_.x}}` placeholders by their base values (containers without one stay shared). */
function substitute(value: PyValue, resolved: ReadonlyMap<BaseReference, PyValue>): PyValue {
  if (value instanceof BaseReference) return resolved.get(value)!;
  if (value instanceof PyList) {
    const items = value.items.map((item) => substitute(item, resolved));
    return items.every((item, index) => item === value.items[index]) ? value : new PyList(items, value.tuple);
  }
  if (value instanceof PyDict) {
    const entries = new Map([...value.entries].map(([key, child]) => [key, substitute(child, resolved)] as const));
    return [...entries].every(([key, child]) => child === value.get(key)) ? value : new PyDict(entries);
  }
  return value;
}

/** MMCV's `Config._merge_a_into_b(child, base)`; `fail` reports at the statement of a top-level key. */
function mergeInto(child: PyDict, base: PyDict, at: string, fail: (topKey: string, message: string) => Error): PyDict {
  const out = new PyDict(new Map(base.entries));
  for (const [key, value] of child.entries) {
    const keyPath = at ? `${at}.${key}` : key;
    if (value instanceof PyDict && out.has(key)) {
      // MMCV pops `_delete_` only here (the key exists in the base); elsewhere it stays in the dict.
      const replace = pyTruthy(value.get('_delete_'));
      const rest = new PyDict(new Map([...value.entries].filter(([k]) => k !== '_delete_')));
      if (replace) {
        out.entries.set(key, rest);
        continue;
      }
      const inherited = out.get(key)!;
      if (!(inherited instanceof PyDict)) {
        const type = pyTypeName(inherited);
        throw fail(
          keyPath.split('.')[0]!,
          `${keyPath} is a dict here but ${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type} in the base, so it cannot be merged into it; set _delete_=True to replace it`,
        );
      }
      out.entries.set(key, mergeInto(rest, inherited, keyPath, fail));
    } else {
      out.entries.set(key, value);
    }
  }
  return out;
}

function stripDeleteMarkers(value: PlainValue): PlainValue {
  if (Array.isArray(value)) return value.map(stripDeleteMarkers);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, PlainValue> = {};
  for (const [key, child] of Object.entries(value)) if (key !== '_delete_') setOwn(out, key, stripDeleteMarkers(child));
  return out;
}
