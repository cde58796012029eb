import type { NodeBase } from './parser';

/**
 * Python values of a config while it is evaluated. Floats are boxed so that `1.0` stays a float
 * (Python's `/`, `//` and `**` depend on it, and the converted `.ts` writes `1.0`, not `1`); ints are
 * plain numbers; tuples are lists marked as tuples (both become arrays in the end).
 */
export class PyFloat {
  constructor(readonly value: number) {}
}

export class PyList {
  constructor(
    readonly items: PyValue[],
    readonly tuple = false,
  ) {}
}

export class PyDict {
  constructor(readonly entries: Map<string, PyValue> = new Map()) {}

  get(key: string): PyValue | undefined {
    return this.entries.get(key);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }
}

/** `{{_base_.a.b}}` before the bases are known (MMCV substitutes it after running the file). */
export class BaseReference {
  constructor(
    readonly path: string[],
    readonly node: NodeBase,
  ) {}
}

export type PyValue = null | boolean | string | number | PyFloat | PyList | PyDict | BaseReference;

export type PlainValue = null | boolean | string | number | PlainValue[] | { [key: string]: PlainValue };

export function pyTypeName(value: PyValue): string {
  if (value === null) return 'NoneType';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'string') return 'str';
  if (typeof value === 'number') return 'int';
  if (value instanceof PyFloat) return 'float';
  if (value instanceof PyList) return value.tuple ? 'tuple' : 'list';
  if (value instanceof PyDict) return 'dict';
  return '{{_base_}} reference';
}

/** Python's truth value (`_delete_=1` counts as true, as in MMCV). */
export function pyTruthy(value: PyValue | undefined): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
  if (value instanceof PyFloat) return value.value !== 0;
  if (value instanceof PyList) return value.items.length > 0;
  if (value instanceof PyDict) return value.entries.size > 0;
  return true;
}

/** Sets `key` as an own property even when it is `__proto__`. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/** JSON-like plain value (what `Config.fromfile(...)._cfg_dict.to_dict()` holds, tuples as lists). */
export function toPlain(value: PyValue): PlainValue {
  if (value === null || typeof value === 'boolean' || typeof value === 'string' || typeof value === 'number') return value;
  if (value instanceof PyFloat) return value.value;
  if (value instanceof PyList) return value.items.map(toPlain);
  if (value instanceof PyDict) {
    const out: Record<string, PlainValue> = {};
    for (const [key, child] of value.entries) setOwn(out, key, toPlain(child));
    return out;
  }
  throw new Error(`internal: unresolved {{_base_.${value.path.join('.')}}} reference`);
}

/** The inverse of toPlain, for bases that are not `.py` (non-integer numbers become floats). */
export function fromPlain(value: unknown): PyValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isInteger(value) ? value : new PyFloat(value);
  if (Array.isArray(value)) return new PyList(value.map(fromPlain));
  if (typeof value === 'object') return new PyDict(new Map(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, fromPlain(v)])));
  return String(value);
}
