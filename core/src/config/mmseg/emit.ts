import * as path from 'path';
import type { Comment } from './tokenizer';
import type { Assignment, DictEntry, Expression } from './parser';
import type { MmsegFile } from './loader';
import type { SegkitConfig } from '../types';
import { PyDict, PyFloat, PyList, type PyValue } from './values';

const MAX_WIDTH = 120;

/** The top-level keys of SegkitConfig (config-types.ts); the check below fails to compile when one is missing. */
const SEGKIT_CONFIG_KEYS = [
  '_base_', 'plugins', 'backend', 'model', 'data', 'optimizer', 'optimizer_config', 'lr_config', 'runner', 'checkpoint_config', 'evaluation',
  'log_config', 'custom_hooks', 'work_dir', 'load_from', 'resume_from', 'seed', 'deterministic', 'workflow', 'log_level', 'dist_params',
  'cudnn_benchmark', 'nan_policy', 'opencv_num_threads', 'mp_start_method', 'gpu_ids', 'device', 'find_unused_parameters', 'auto_resume',
] as const satisfies readonly (keyof SegkitConfig)[];
type MissingSegkitConfigKeys = Exclude<keyof SegkitConfig, (typeof SEGKIT_CONFIG_KEYS)[number]>;
const segkitConfigKeysComplete: [MissingSegkitConfigKeys] extends [never] ? true : MissingSegkitConfigKeys = true;
void segkitConfigKeysComplete;
const INDENT = '  ';

// Words a Python name may be but a TypeScript `const` may not.
const TS_RESERVED = new Set([
  'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else', 'enum', 'export', 'extends',
  'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof', 'new', 'null', 'return', 'super', 'switch', 'this',
  'throw', 'true', 'try', 'typeof', 'var', 'void', 'while', 'with', 'let', 'static', 'yield', 'await', 'implements', 'interface',
  'package', 'private', 'protected', 'public', 'arguments', 'eval', 'undefined', 'NaN', 'Infinity', 'defineConfig',
]);

export interface EmitOptions {
  /** `_base_` entries as the converted file must name them (same order as the `.py`). */
  readonly baseSpecs: readonly string[];
  /** Plugins this file's own content needs. */
  readonly plugins: readonly string[];
  /** Shown in the header comment. */
  readonly sourceName: string;
}

/**
 * The `.ts` form of one `.py` config file: names that later statements use become `const`s, every
 * other module-level name is written in place in `defineConfig({...})` (MMCV keeps all of them as
 * config keys, so the converted file does too), comments are kept, `SyncBN` is written as `BN`,
 * `custom_imports` becomes `plugins`, and `{{_base_.x}}` is written as the base value it stands for.
 */
export function emitTypescript(file: MmsegFile, options: EmitOptions): string {
  const { module, namespace, valueOf } = file.evaluated;
  const statements = module.statements;
  const assignedTwice = new Set(statements.map((s) => s.target).filter((name, i, all) => all.indexOf(name) !== i));
  const referenced = new Set<string>();
  for (const statement of statements) forEachName(statement.value, (name) => referenced.add(name));
  // A name assigned twice makes inline values order-dependent: then every statement is a declaration.
  const declareAll = assignedTwice.size > 0;
  const skipped = new Set(['_base_', 'custom_imports', 'plugins']);
  const identifiers = new Map<string, string>();
  const identifierOf = (name: string) => {
    let id = identifiers.get(name);
    if (!id) {
      id = TS_RESERVED.has(name) ? `${name}_` : name;
      while ([...identifiers.values()].includes(id)) id = `${id}_`;
      identifiers.set(name, id);
    }
    return id;
  };
  const isDeclared = (name: string) => !skipped.has(name) && (declareAll || referenced.has(name));
  let mappedSyncBN = false;

  const printer = new Printer(module.source, valueOf, file.resolved, identifierOf, () => (mappedSyncBN = true));
  const declarations: string[] = [];
  const seenDeclarations = new Set<string>();
  const exportEntries: string[] = [];
  const topComments: Comment[] = [];
  for (const statement of statements) {
    if (skipped.has(statement.target)) {
      topComments.push(...statement.comments);
      continue;
    }
    if (!isDeclared(statement.target)) continue;
    const id = identifierOf(statement.target);
    const keyword = seenDeclarations.has(statement.target) ? '' : assignedTwice.has(statement.target) ? 'let ' : 'const ';
    seenDeclarations.add(statement.target);
    const head = `${keyword}${id} = `;
    const comments = printer.comments(statement.comments, '');
    declarations.push(`${comments.length && declarations.length ? '\n' : ''}${comments}${head}${printer.expression(statement.value, '', head.length)};`);
  }

  const firstStatement = new Map<string, Assignment>();
  for (const statement of statements) if (!firstStatement.has(statement.target)) firstStatement.set(statement.target, statement);
  if (options.baseSpecs.length) {
    const specs = options.baseSpecs.map(tsString);
    const single = file.baseForm === 'single' && specs.length === 1;
    exportEntries.push(`${printer.comments(topComments, INDENT)}${INDENT}_base_: ${single ? specs[0] : fitList(specs, INDENT, '_base_: '.length)},`);
  } else if (topComments.length) exportEntries.push(printer.comments(topComments, INDENT).trimEnd());
  if (file.customImports) {
    const modules = file.customImports.plugins.length ? ` -> ${file.customImports.plugins.join(', ')}` : '';
    exportEntries.push(`${INDENT}// custom_imports of the .py${modules}`);
  }
  if (options.plugins.length) exportEntries.push(`${INDENT}plugins: ${fitList(options.plugins.map(tsString), INDENT, 'plugins: '.length)},`);
  // Names that are not sections of a segkit config (norm_cfg, crop_size, train_pipeline, ...) go in
  // object spreads: MMCV keeps them as config keys, and a spread keeps defineConfig's key check quiet.
  let extras: { inline?: string; lines: string[] }[] = [];
  let explained = false;
  const flushExtras = () => {
    if (!extras.length) return;
    if (!explained) exportEntries.push(`${INDENT}// module-level names of the .py that are not segkit config sections (MMCV keeps them as config keys)`);
    explained = true;
    const inline = extras.every((e) => e.inline !== undefined) ? `${INDENT}...{ ${extras.map((e) => e.inline).join(', ')} },` : undefined;
    if (inline && inline.length <= MAX_WIDTH) exportEntries.push(inline);
    else exportEntries.push(`${INDENT}...{\n${extras.map((e) => e.lines.join('\n')).join('\n')}\n${INDENT}},`);
    extras = [];
  };
  for (const name of namespace.keys()) {
    if (skipped.has(name) || name.startsWith('__')) continue;
    const key = propertyKey(name);
    const section = (SEGKIT_CONFIG_KEYS as readonly string[]).includes(name);
    const indent = section ? INDENT : INDENT + INDENT;
    let entry: string;
    let inline: string | undefined;
    if (isDeclared(name)) {
      const id = identifierOf(name);
      inline = key === id ? id : `${key}: ${id}`;
      entry = `${indent}${inline},`;
    } else {
      const statement = firstStatement.get(name)!;
      const head = `${key}: `;
      const value = printer.expression(statement.value, indent, indent.length + head.length);
      if (!statement.comments.length && !value.includes('\n')) inline = `${head}${value}`;
      entry = `${printer.comments(statement.comments, indent)}${indent}${head}${value},`;
    }
    if (section) {
      flushExtras();
      exportEntries.push(entry);
    } else extras.push({ inline, lines: [entry] });
  }
  flushExtras();
  if (module.trailingComments.length) exportEntries.push(printer.comments(module.trailingComments, INDENT).trimEnd());

  const header = [`// MMSegmentation 0.x ${options.sourceName}, converted by \`segkit convert config\`.`];
  if (mappedSyncBN) header.push('// SyncBN is written as BN: segkit trains on one device, where SyncBN is BatchNorm over the local batch.');
  if (file.resolved.size) header.push('// {{_base_.x}} references are written out as the base values they stand for.');
  const parts = [`import { defineConfig } from '@segkit/core';\n\n${header.join('\n')}`];
  if (declarations.length) parts.push(declarations.join('\n'));
  parts.push(`export default defineConfig({\n${exportEntries.join('\n')}\n});`);
  return `${parts.join('\n\n')}\n`;
}

function forEachName(node: Expression, visit: (name: string) => void): void {
  switch (node.kind) {
    case 'name':
      visit(node.name);
      return;
    case 'list':
    case 'tuple':
      node.items.forEach((item) => forEachName(item.value, visit));
      return;
    case 'dict':
      node.entries.forEach((entry) => {
        if (entry.kind === 'pair') forEachName(entry.key, visit);
        forEachName(entry.value, visit);
      });
      return;
    case 'unary':
      forEachName(node.operand, visit);
      return;
    case 'binary':
      forEachName(node.left, visit);
      forEachName(node.right, visit);
      return;
    default:
      return;
  }
}

class Printer {
  constructor(
    private readonly source: string,
    private readonly valueOf: ReadonlyMap<Expression, PyValue>,
    private readonly resolved: MmsegFile['resolved'],
    private readonly identifierOf: (name: string) => string,
    private readonly onSyncBN: () => void,
  ) {}

  comments(comments: readonly Comment[], indent: string): string {
    return comments.map((c) => `${indent}//${c.text.replace(/\s+$/, '')}\n`).join('');
  }

  /** `used` is how much of the first line is already taken (for the width check). */
  expression(node: Expression, indent: string, used: number): string {
    const inline = this.inline(node);
    if (inline !== undefined && used + inline.length <= MAX_WIDTH) return inline;
    switch (node.kind) {
      case 'dict':
        return this.block('{', '}', node.entries.map((entry) => (inner: string) => this.dictEntry(entry, node.entries, inner)), node.trailingComments, indent);
      case 'list':
      case 'tuple':
        if (node.items.some((item) => item.starred && !(this.valueOf.get(item.value) instanceof PyList))) break;
        return this.block(
          '[',
          ']',
          node.items.map((item) => (inner: string) => `${this.comments(item.comments, inner)}${inner}${item.starred ? '...' : ''}${this.expression(item.value, inner, inner.length + 3)},`),
          node.trailingComments,
          indent,
        );
      case 'baseref':
        return `/* {{_base_.${node.path.join('.')}}} */ ${this.value(this.resolved.get(this.referenceOf(node))!, indent, used + 20)}`;
      default:
        break;
    }
    return inline ?? this.computed(node, indent, used);
  }

  private block(open: string, close: string, entries: ((inner: string) => string)[], trailing: readonly Comment[], indent: string): string {
    if (entries.length === 0 && trailing.length === 0) return `${open}${close}`;
    const inner = indent + INDENT;
    return `${open}\n${entries.map((entry) => `${entry(inner)}\n`).join('')}${this.comments(trailing, inner)}${indent}${close}`;
  }

  private dictEntry(entry: DictEntry, all: readonly DictEntry[], inner: string): string {
    const comments = this.comments(entry.comments, inner);
    if (entry.kind === 'spread') {
      void all;
      return `${comments}${inner}...${this.expression(entry.value, inner, inner.length + 3)},`;
    }
    const key = propertyKey(this.valueOf.get(entry.key) as string);
    const value = this.entryValue(entry, inner, inner.length + key.length + 2);
    return `${comments}${inner}${value === key ? key : `${key}: ${value}`},`;
  }

  private entryValue(entry: Extract<DictEntry, { kind: 'pair' }>, indent: string, used: number): string {
    if (this.valueOf.get(entry.key) === 'type' && this.valueOf.get(entry.value) === 'SyncBN') {
      this.onSyncBN();
      return "'BN'";
    }
    return this.expression(entry.value, indent, used);
  }

  /** One-line form, or undefined when the node holds comments (which need lines of their own). */
  private inline(node: Expression): string | undefined {
    switch (node.kind) {
      case 'number':
        return numberText(node.text);
      case 'string':
        return tsString(node.value);
      case 'constant':
        return node.value === null ? 'null' : String(node.value);
      case 'name':
        return this.identifierOf(node.name);
      case 'baseref': {
        const value = this.inlineValue(this.resolved.get(this.referenceOf(node))!);
        return `/* {{_base_.${node.path.join('.')}}} */ ${value}`;
      }
      case 'list':
      case 'tuple': {
        if (node.trailingComments.length || node.items.some((item) => item.comments.length)) return undefined;
        if (node.items.some((item) => item.starred && !(this.valueOf.get(item.value) instanceof PyList))) return undefined;
        const items: string[] = [];
        for (const item of node.items) {
          const text = this.inline(item.value);
          if (text === undefined) return undefined;
          items.push(item.starred ? `...${text}` : text);
        }
        return `[${items.join(', ')}]`;
      }
      case 'dict': {
        if (node.trailingComments.length || node.entries.some((entry) => entry.comments.length)) return undefined;
        if (node.entries.length === 0) return '{}';
        const parts: string[] = [];
        for (const entry of node.entries) {
          if (entry.kind === 'spread') {
            const value = this.inline(entry.value);
            if (value === undefined) return undefined;
            parts.push(`...${value}`);
          } else {
            const value =
              this.valueOf.get(entry.key) === 'type' && this.valueOf.get(entry.value) === 'SyncBN' ? (this.onSyncBN(), "'BN'") : this.inline(entry.value);
            if (value === undefined) return undefined;
            const key = propertyKey(this.valueOf.get(entry.key) as string);
            parts.push(value === key ? key : `${key}: ${value}`);
          }
        }
        return `{ ${parts.join(', ')} }`;
      }
      case 'unary':
      case 'binary':
        return isPlainArithmetic(node, this.valueOf) ? this.arithmetic(node) : `${this.inlineValue(this.valueOf.get(node)!)} /* ${this.sourceText(node)} */`;
    }
  }

  private sourceText(node: Expression): string {
    return this.source.slice(node.offset, node.end).replace(/\s+/g, ' ').replace(/\*\//g, '* /');
  }

  /** `+ - * / **` on numbers means the same in TypeScript: written as an expression. */
  private arithmetic(node: Expression): string {
    if (node.kind === 'unary') {
      const operand = this.arithmetic(node.operand);
      return `${node.operator}${node.operand.kind === 'binary' || node.operand.kind === 'unary' ? `(${operand})` : operand}`;
    }
    if (node.kind === 'binary') {
      const own = precedence(node);
      const wrap = (child: Expression, left: boolean) => {
        const text = this.arithmetic(child);
        const inner = precedence(child);
        // `**` is right-associative and takes no unary operand on its left in TypeScript; for the other
        // operators an equal-precedence right operand keeps its parentheses (float addition is not associative).
        const needs = node.operator === '**' ? (left ? inner <= own : inner < own) : left ? inner < own : inner <= own;
        return needs ? `(${text})` : text;
      };
      return `${wrap(node.left, true)} ${node.operator} ${wrap(node.right, false)}`;
    }
    return this.inline(node)!;
  }

  /** Python-only arithmetic (`//`, `%`, strings, lists): the value Python computes, and the source as a comment. */
  private computed(node: Expression, indent: string, used: number): string {
    const source = this.sourceText(node);
    return `${this.value(this.valueOf.get(node)!, indent, used + source.length + 7)} /* ${source} */`;
  }

  private referenceOf(node: Extract<Expression, { kind: 'baseref' }>) {
    return [...this.resolved.keys()].find((reference) => reference.node === node)!;
  }

  private inlineValue(value: PyValue): string {
    if (value instanceof PyDict) {
      if (value.entries.size === 0) return '{}';
      return `{ ${[...value.entries].map(([key, child]) => `${propertyKey(key)}: ${key === 'type' && child === 'SyncBN' ? (this.onSyncBN(), "'BN'") : this.inlineValue(child)}`).join(', ')} }`;
    }
    if (value instanceof PyList) return `[${value.items.map((item) => this.inlineValue(item)).join(', ')}]`;
    if (value instanceof PyFloat) return floatText(value.value);
    if (typeof value === 'string') return tsString(value);
    return String(value);
  }

  /** A Python value (e.g. what `{{_base_.x}}` stands for) as TypeScript, broken over lines when long. */
  private value(value: PyValue, indent: string, used: number): string {
    const inline = this.inlineValue(value);
    if (used + inline.length <= MAX_WIDTH) return inline;
    const inner = indent + INDENT;
    if (value instanceof PyDict) {
      const lines = [...value.entries].map(([key, child]) => {
        const k = propertyKey(key);
        const text = key === 'type' && child === 'SyncBN' ? (this.onSyncBN(), "'BN'") : this.value(child, inner, inner.length + k.length + 2);
        return `${inner}${k}: ${text},\n`;
      });
      return `{\n${lines.join('')}${indent}}`;
    }
    if (value instanceof PyList) return `[\n${value.items.map((item) => `${inner}${this.value(item, inner, inner.length)},\n`).join('')}${indent}]`;
    return inline;
  }
}

/** Binding strength of an arithmetic node as written in TypeScript (atoms bind tightest). */
function precedence(node: Expression): number {
  if (node.kind === 'binary') return node.operator === '**' ? 4 : node.operator === '+' || node.operator === '-' ? 1 : 2;
  if (node.kind === 'unary') return 3;
  return 5;
}

function isPlainArithmetic(node: Expression, valueOf: ReadonlyMap<Expression, PyValue>): boolean {
  if (node.kind === 'number') return true;
  if (node.kind === 'name') {
    const value = valueOf.get(node);
    return typeof value === 'number' || value instanceof PyFloat;
  }
  if (node.kind === 'unary') return isPlainArithmetic(node.operand, valueOf);
  if (node.kind === 'binary') return ['+', '-', '*', '/', '**'].includes(node.operator) && isPlainArithmetic(node.left, valueOf) && isPlainArithmetic(node.right, valueOf);
  return false;
}

function fitList(items: readonly string[], indent: string, used: number): string {
  const inline = `[${items.join(', ')}]`;
  if (indent.length + used + inline.length <= MAX_WIDTH) return inline;
  return `[\n${items.map((item) => `${indent}${INDENT}${item},\n`).join('')}${indent}]`;
}

/** A Python number literal as TypeScript (same value): underscores dropped, `5.` → `5.0`, `.5` → `0.5`. */
function numberText(text: string): string {
  let clean = text.replace(/_/g, '');
  if (/^0[xob]/i.test(clean)) return clean.toLowerCase();
  if (clean.startsWith('.')) clean = `0${clean}`;
  return clean.replace(/\.(?=$|[eE])/, '.0');
}

function floatText(value: number): string {
  const text = String(value);
  return /^-?\d+$/.test(text) ? `${text}.0` : text;
}

export function tsString(value: string): string {
  const json = JSON.stringify(value).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'");
  return `'${json}'`;
}

function propertyKey(key: string): string {
  if (key === '__proto__') return "['__proto__']";
  return /^[A-Za-z_$][\w$]*$/.test(key) ? key : tsString(key);
}

/** A path as a `_base_` entry: relative, with forward slashes, starting with `.`. */
export function baseSpecPath(fromFile: string, toFile: string): string {
  const relative = path.relative(path.dirname(fromFile), toFile).split(path.sep).join('/');
  return relative.startsWith('.') ? relative : `./${relative}`;
}
