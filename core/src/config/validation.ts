import { z } from 'zod';
import { SegkitError, joinPath, nearestName } from '../errors';

/**
 * A config value as text for error messages: JSON-like, but numbers as JavaScript writes them, so that
 * `Infinity` (what `1e9999` parses to), `-Infinity` and `NaN` show as such instead of JSON's `null`;
 * `undefined` inside objects and lists shows too. Longer than `maxLength` characters: cut with `...`.
 */
export function formatValue(value: unknown, maxLength = 120): string {
  const text = formatValueText(value, new Set());
  return text.length > maxLength ? `${text.slice(0, Math.max(0, maxLength - 3))}...` : text;
}

function formatValueText(value: unknown, seen: Set<object>): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (typeof value !== 'object') return String(value);
  if (seen.has(value)) return '(circular)';
  seen.add(value);
  try {
    if (Array.isArray(value)) return `[${value.map((item) => formatValueText(item, seen)).join(',')}]`;
    const entries = Object.entries(value as Record<string, unknown>).map(([key, item]) => `${JSON.stringify(key)}:${formatValueText(item, seen)}`);
    return `{${entries.join(',')}}`;
  } finally {
    seen.delete(value);
  }
}

/**
 * A short, user-facing description of a config value: `-5`, `Infinity`, `"abc"`, `[1,NaN]`,
 * `a list of 9`, `an object`. Numbers appear as JavaScript writes them (never JSON's `null` for
 * `Infinity` or `NaN`).
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return value.length <= 8 ? formatValue(value) : `a list of ${value.length}`;
  if (value !== null && typeof value === 'object') return 'an object';
  return formatValue(value);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current: any = root;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = current[key as any];
  }
  return current;
}

const DEFAULT_MESSAGE = /^(Invalid|Too small|Too big|Unrecognized|Expected|Input not)/;

/** The options a zod object schema accepts (for "did you mean" suggestions). */
function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: any = schema;
  for (const key of path) {
    current = unwrap(current);
    if (current instanceof z.ZodObject) current = (current.shape as any)[key as string];
    else if (current instanceof z.ZodArray) current = current.element;
    else return [];
    if (!current) return [];
  }
  current = unwrap(current);
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

function unwrap(schema: any): any {
  let current = schema;
  for (let i = 0; i < 10 && current; i++) {
    const def = current._zod?.def;
    if (!def) break;
    if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable' || def.type === 'prefault' || def.type === 'readonly') {
      current = def.innerType;
    } else if (def.type === 'pipe') {
      current = def.in;
    } else break;
  }
  return current;
}

function formatIssue(issue: z.core.$ZodIssue, input: unknown, schema: z.ZodType, base: string, typeName: string): string {
  const issuePath = issue.path as PropertyKey[];
  const where = issuePath.reduce<string>((acc, key) => joinPath(acc, String(key)), base);
  const value = valueAt(input, issuePath);
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(schema, issuePath);
    return issue.keys
      .map((key) => {
        const suggestion = nearestName(key, known);
        const hint = suggestion ? ` (did you mean '${suggestion}'?)` : '';
        return `${joinPath(where, key)}: unknown option of ${typeName}${hint}; valid options: ${known.join(', ') || 'none'}`;
      })
      .join('\n');
  }
  if (!DEFAULT_MESSAGE.test(issue.message)) return `${where}: ${issue.message}, got ${describeValue(value)}`;
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return `${where}: required option missing (expected ${issue.expected})`;
      return `${where}: expected ${issue.expected}, got ${describeValue(value)}`;
    case 'too_small':
      return `${where}: expected ${issue.origin === 'array' ? 'a list of length' : 'a value'} ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}, got ${describeValue(value)}`;
    case 'too_big':
      return `${where}: expected ${issue.origin === 'array' ? 'a list of length' : 'a value'} ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}, got ${describeValue(value)}`;
    case 'invalid_value':
      return `${where}: expected one of ${issue.values.map((v) => formatValue(v)).join(', ')}, got ${describeValue(value)}`;
    case 'invalid_union':
      return `${where}: ${issue.message.replace(/^Invalid input/, 'invalid value')}, got ${describeValue(value)}`;
    default:
      return `${where}: ${issue.message}, got ${describeValue(value)}`;
  }
}

/**
 * Validates `options` with a component's schema (strict: unknown keys are errors) and returns the
 * parsed options with defaults filled in. Throws one SegkitError listing every problem with its config path.
 */
export function validateOptions<T>(schema: z.ZodType<T>, options: unknown, path: string, typeName: string): T {
  const result = schema.safeParse(options);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => formatIssue(issue, options, schema, path, typeName));
  throw new SegkitError(lines.join('\n'), path);
}

/**
 * The schema of MMCV's `by_epoch` (and `warmup_by_epoch`) options: segkit's runner is iteration-based,
 * so only `false` is accepted (the default), with an error that says why.
 */
export function iterationBasedOnly() {
  return z.literal(false, { error: 'segkit trains by iterations: expected false (set runner.max_iters and by_epoch: false)' }).default(false);
}
