import { syntaxError } from './tokenizer';
import type { Assignment, BinaryOperator, Expression, NodeBase, ParsedModule } from './parser';
import { BaseReference, PyDict, PyFloat, PyList, pyTypeName, type PyValue } from './values';

export interface EvaluatedModule {
  readonly module: ParsedModule;
  /** Module-level names in the order Python's module dict has them (first assignment), with their final values. */
  readonly namespace: Map<string, PyValue>;
  /** Every `{{_base_.x}}` in the file, in source order. */
  readonly references: BaseReference[];
  /** The value each expression node evaluated to (the converter writes some of them as literals). */
  readonly valueOf: Map<Expression, PyValue>;
}

/**
 * Runs a parsed config as Python would run the module: statements in order, names bound to the value
 * their expression had then (dicts shared, not copied, as in Python). `{{_base_.x}}` evaluates to a
 * placeholder that the loader replaces once the bases are known, as MMCV does.
 */
export function evaluateModule(module: ParsedModule): EvaluatedModule {
  const namespace = new Map<string, PyValue>();
  const references: BaseReference[] = [];
  const valueOf = new Map<Expression, PyValue>();
  const file = module.file;
  const fail = (node: NodeBase, message: string) => syntaxError({ file, line: node.line, column: node.column }, message);

  const evaluate = (node: Expression): PyValue => {
    const value = evaluateNode(node);
    valueOf.set(node, value);
    return value;
  };

  const evaluateNode = (node: Expression): PyValue => {
    switch (node.kind) {
      case 'number':
        return parseNumber(node.text, () => fail(node, `integer literal '${node.text}' is too large for a config`));
      case 'string':
        return node.value;
      case 'constant':
        return node.value;
      case 'name': {
        if (!namespace.has(node.name)) {
          const hint = node.name === 'dict' ? ' (call it: dict(...))' : node.name.startsWith('_base_') ? ' (write {{_base_.name}} to use a value of the bases)' : '';
          throw fail(node, `name '${node.name}' is not defined: a config can only use names assigned earlier in the same file${hint}`);
        }
        return namespace.get(node.name)!;
      }
      case 'baseref': {
        const reference = new BaseReference(node.path, node);
        references.push(reference);
        return reference;
      }
      case 'list':
      case 'tuple': {
        const items: PyValue[] = [];
        for (const item of node.items) {
          const value = evaluate(item.value);
          if (!item.starred) items.push(value);
          else if (value instanceof PyList) items.push(...value.items);
          else if (value instanceof PyDict) items.push(...value.entries.keys());
          else if (typeof value === 'string') items.push(...value);
          else throw fail(item.value, `cannot unpack ${pyTypeName(value)} with *: expected a list, tuple, dict or string`);
        }
        return new PyList(items, node.kind === 'tuple');
      }
      case 'dict': {
        const entries = new Map<string, PyValue>();
        // dict(a=1, **m) with 'a' in m is a TypeError in Python; a positional mapping may be overridden.
        const keywords = new Set<string>();
        const addKeyword = (key: string, at: NodeBase) => {
          if (node.form !== 'call') return;
          if (keywords.has(key)) throw fail(at, `dict() got multiple values for keyword argument '${key}'`);
          keywords.add(key);
        };
        for (const entry of node.entries) {
          const value = evaluate(entry.value);
          if (entry.kind === 'spread') {
            if (!(value instanceof PyDict)) throw fail(entry.value, `${entry.positional ? 'dict(...) takes' : '** takes'} a dict, got ${pyTypeName(value)}`);
            for (const [key, child] of value.entries) {
              if (!entry.positional) addKeyword(key, entry.value);
              entries.set(key, child);
            }
          } else {
            const key = evaluate(entry.key);
            if (typeof key !== 'string') throw fail(entry.key, `dict keys must be strings in a config, got ${pyTypeName(key)} ${source(entry.key)}`);
            addKeyword(key, entry.key);
            entries.set(key, value);
          }
        }
        return new PyDict(entries);
      }
      case 'unary': {
        const operand = evaluate(node.operand);
        if (typeof operand === 'number') return node.operator === '-' ? -operand || 0 : operand;
        if (operand instanceof PyFloat) return new PyFloat(node.operator === '-' ? -operand.value : operand.value);
        throw fail(node, `bad operand type for unary ${node.operator}: '${pyTypeName(operand)}'`);
      }
      case 'binary':
        return binary(node.operator, evaluate(node.left), evaluate(node.right), node, fail);
    }
  };

  const source = (node: NodeBase) => module.source.slice(node.offset, node.end);

  const assign = (statement: Assignment) => {
    const value = evaluate(statement.value);
    // Python's module dict keeps a name where it was first bound.
    namespace.set(statement.target, value);
  };
  for (const statement of module.statements) assign(statement);
  return { module, namespace, references, valueOf };
}

/** An int (JS number, exact up to 2^53) or a float, from a Python number literal. */
export function parseNumber(text: string, tooLarge: () => Error): number | PyFloat {
  const clean = text.replace(/_/g, '');
  if (/^0[xob]/i.test(clean)) {
    const value = Number(clean.toLowerCase());
    if (!Number.isSafeInteger(value)) throw tooLarge();
    return value;
  }
  if (/[.eE]/.test(clean)) return new PyFloat(Number(clean));
  const value = Number(clean);
  if (!Number.isSafeInteger(value)) throw tooLarge();
  return value;
}

type Fail = (node: NodeBase, message: string) => Error;

function numeric(value: PyValue): { value: number; float: boolean } | undefined {
  if (typeof value === 'number') return { value, float: false };
  if (value instanceof PyFloat) return { value: value.value, float: true };
  return undefined;
}

/** Python's binary arithmetic on ints, floats, strings and lists/tuples. */
function binary(operator: BinaryOperator, left: PyValue, right: PyValue, node: NodeBase, fail: Fail): PyValue {
  const unsupported = () => fail(node, `unsupported operand type(s) for ${operator}: '${pyTypeName(left)}' and '${pyTypeName(right)}'`);
  if (left instanceof BaseReference || right instanceof BaseReference) {
    throw fail(node, 'a {{_base_.name}} reference must be a whole value: MMCV substitutes it after running the file, so arithmetic on it does not see the base value');
  }
  const a = numeric(left);
  const b = numeric(right);
  if (a && b) {
    const float = a.float || b.float;
    const result = (value: number): PyValue => {
      if (!Number.isFinite(value)) throw fail(node, `the result of ${operator} is not a finite number`);
      if (float) return new PyFloat(value);
      if (!Number.isSafeInteger(value)) throw fail(node, `the result of ${operator} is too large an integer for a config`);
      return value;
    };
    const zeroDivision = () => fail(node, `division by zero (${operator})`);
    switch (operator) {
      case '+':
        return result(a.value + b.value);
      case '-':
        return result(a.value - b.value);
      case '*':
        return result(a.value * b.value);
      case '/':
        if (b.value === 0) throw zeroDivision();
        return new PyFloat(finite(a.value / b.value, node, fail));
      case '//':
        if (b.value === 0) throw zeroDivision();
        return result(Math.floor(a.value / b.value));
      case '%': {
        if (b.value === 0) throw zeroDivision();
        const remainder = a.value - Math.floor(a.value / b.value) * b.value;
        return result(float ? remainder : ((a.value % b.value) + b.value) % b.value);
      }
      case '**': {
        if (a.value === 0 && b.value < 0) throw fail(node, 'zero cannot be raised to a negative power');
        if (a.value < 0 && !Number.isInteger(b.value)) throw fail(node, 'a negative number raised to a fractional power is complex: not supported in configs');
        if (!float && b.value < 0) return new PyFloat(finite(a.value ** b.value, node, fail));
        return result(a.value ** b.value);
      }
    }
  }
  if (operator === '+') {
    if (typeof left === 'string' && typeof right === 'string') return left + right;
    if (left instanceof PyList && right instanceof PyList && left.tuple === right.tuple) return new PyList([...left.items, ...right.items], left.tuple);
    throw unsupported();
  }
  if (operator === '*') {
    const repeat = (sequence: PyValue, count: PyValue): PyValue | undefined => {
      if (typeof count !== 'number') return undefined;
      const times = Math.max(0, count);
      if (typeof sequence === 'string') return sequence.repeat(times);
      if (sequence instanceof PyList) return new PyList(Array.from({ length: times }, () => sequence.items).flat(), sequence.tuple);
      return undefined;
    };
    const repeated = repeat(left, right) ?? repeat(right, left);
    if (repeated !== undefined) return repeated;
  }
  if (operator === '%' && typeof left === 'string') throw fail(node, "string formatting with '%' is not supported in configs");
  throw unsupported();
}

function finite(value: number, node: NodeBase, fail: Fail): number {
  if (!Number.isFinite(value)) throw fail(node, 'the result is not a finite number');
  return value;
}
