import { z } from 'zod';
import { SegkitError, joinPath, nearestName } from '../errors';

/** A short, user-facing description of a config value: `-5`, `"abc"`, `a list of 3`, `an object`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length <= 8 ? JSON.stringify(value) : `a list of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
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
      return `${where}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(value)}`;
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
