import { SegkitError } from '../errors';

/**
 * A Python dict (or collections.OrderedDict) as unpickled: entries in insertion order. Attributes set on
 * it by BUILD (an OrderedDict state dict's `_metadata`) are kept apart from the entries.
 */
export class PyDict {
  readonly entries = new Map<PickleKey, PickleValue>();
  readonly attributes = new Map<string, PickleValue>();
  constructor(readonly ordered = false) {}

  get(key: PickleKey): PickleValue | undefined {
    return this.entries.get(key);
  }

  has(key: PickleKey): boolean {
    return this.entries.has(key);
  }
}

/** A dict key: the hashable values segkit accepts (tuple keys are compared by identity). */
export type PickleKey = string | number | bigint | boolean | null | PickleValue[];

/** A reference to an allowed global (a storage type, or a callable that REDUCE applies). */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** What `persistentLoad` returned; opaque to the unpickler. */
export interface PersistentObject {
  readonly persistent: true;
}

/** Unpickled values: tuples and lists are both arrays; ints beyond 2^53 are bigints; bytes are Uint8Arrays. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | Set<PickleValue>
  | PyDict
  | PyGlobal
  | PersistentObject
  | object;

export interface UnpickleOptions {
  /** Names the stream in errors: `model.pth (archive/data.pkl)`. */
  source: string;
  /** Allowed globals (`module.name`); anything else is refused before it is looked up. */
  allowedGlobals: ReadonlySet<string>;
  /**
   * Applies an allowed callable (REDUCE / NEWOBJ). Returns the result; `collections.OrderedDict` is handled
   * by the unpickler itself.
   */
  call(callable: PyGlobal, args: PickleValue[]): PickleValue;
  /** Resolves a persistent id (torch's storages). */
  persistentLoad(pid: PickleValue): PickleValue;
}

/** The pickle stream ends before its STOP: the data was cut off (or more of the file must be read). */
export class PickleTruncatedError extends SegkitError {}

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * A restricted unpickler for the pickle subset torch.save and MMCV's checkpoints use (protocols 2-5):
 * containers, numbers, strings, bytes, None/bool, persistent ids, and globals from an allow-list. No global
 * is ever imported or executed: GLOBAL / STACK_GLOBAL check the name against `allowedGlobals` first and
 * REDUCE hands the allowed ones to `call`, which builds plain data. Text (protocol 0) opcodes, INST/OBJ and
 * the extension registry are refused.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): PickleValue {
  return unpickleAt(bytes, 0, options).value;
}

/**
 * Unpickles the stream starting at byte `start` of `bytes` and returns its value and the byte after its STOP
 * opcode, for files holding several pickles in a row (PyTorch's legacy format). Data ending before the STOP is
 * a PickleTruncatedError.
 */
export function unpickleAt(bytes: Uint8Array, start: number, options: UnpickleOptions): { value: PickleValue; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: StackItem[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = start;

  const fail = (why: string): never => {
    throw new SegkitError(`${options.source}: ${why}`);
  };
  const truncated = (): never => {
    throw new PickleTruncatedError(`${options.source}: pickle data ends unexpectedly at byte ${pos}`);
  };
  const need = (count: number) => {
    if (pos + count > bytes.length) truncated();
  };
  const u8 = () => {
    need(1);
    return bytes[pos++]!;
  };
  const u16 = () => {
    need(2);
    const value = view.getUint16(pos, true);
    pos += 2;
    return value;
  };
  const u32 = () => {
    need(4);
    const value = view.getUint32(pos, true);
    pos += 4;
    return value;
  };
  const u64 = () => {
    need(8);
    const value = view.getBigUint64(pos, true);
    pos += 8;
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail('pickle length field is too large');
    return Number(value);
  };
  const take = (count: number) => {
    need(count);
    const slice = bytes.subarray(pos, pos + count);
    pos += count;
    return slice;
  };
  const utf8 = (count: number) => {
    const data = take(count);
    try {
      return decoder.decode(data);
    } catch {
      return fail(`invalid UTF-8 in a pickled string at byte ${pos}`);
    }
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) truncated();
    const text = new TextDecoder('latin1').decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const pop = (): PickleValue => {
    const item = stack.pop();
    if (item === undefined || item === MARK) return fail(`pickle stack underflow at byte ${pos}`);
    return item;
  };
  const top = (): PickleValue => {
    const item = stack[stack.length - 1];
    if (item === undefined || item === MARK) return fail(`pickle stack underflow at byte ${pos}`);
    return item;
  };
  /** Everything above the topmost MARK (which is removed). */
  const popMark = (): PickleValue[] => {
    const index = stack.lastIndexOf(MARK);
    if (index < 0) fail(`pickle MARK missing at byte ${pos}`);
    const items = stack.splice(index) as PickleValue[];
    items.shift();
    return items;
  };
  const memoGet = (index: number) => {
    if (!memo.has(index)) fail(`pickle memo entry ${index} is missing`);
    return memo.get(index)!;
  };
  const global = (module: string, name: string): PyGlobal => {
    const qualified = `${module}.${name}`;
    if (!options.allowedGlobals.has(qualified)) {
      fail(`refusing to unpickle the global '${qualified}': only tensors, storages and plain containers are loaded, and nothing in a checkpoint is executed`);
    }
    return new PyGlobal(module, name);
  };
  const apply = (callable: PickleValue, args: PickleValue): PickleValue => {
    if (!(callable instanceof PyGlobal)) return fail(`pickle REDUCE on a value that is not an allowed global`);
    if (!Array.isArray(args)) return fail(`pickle REDUCE arguments for ${callable.qualifiedName} are not a tuple`);
    if (callable.qualifiedName === 'collections.OrderedDict') {
      const dict = new PyDict(true);
      const [items] = args;
      if (Array.isArray(items)) for (const pair of items) if (Array.isArray(pair) && pair.length === 2) dict.entries.set(pair[0] as PickleKey, pair[1]!);
      return dict;
    }
    return options.call(callable, args);
  };
  const setItems = (target: PickleValue, items: PickleValue[]) => {
    if (!(target instanceof PyDict)) return fail('pickle SETITEMS on a value that is not a dict');
    if (items.length % 2 !== 0) fail('pickle SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) target.entries.set(items[i] as PickleKey, items[i + 1]!);
  };
  const signedLittleEndian = (data: Uint8Array): number | bigint => {
    if (data.length === 0) return 0;
    let value = 0n;
    for (let i = data.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(data[i]!);
    if (data[data.length - 1]! & 0x80) value -= 1n << BigInt(data.length * 8);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  };

  for (;;) {
    const at = pos;
    const opcode = u8();
    switch (opcode) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol newer than 5');
        break;
      case 0x95: // FRAME: a length prefix only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`pickle stream ends with ${stack.length} values on the stack`);
        return { value: pop(), end: pos };
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        if (stack.pop() === undefined) fail(`pickle stack underflow at byte ${at}`);
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(signedLittleEndian(take(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(signedLittleEndian(take(u32())));
        break;
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(u64()));
        break;
      case 0x54: // BINSTRING (Python 2 str): kept as text
        stack.push(new TextDecoder('latin1').decode(take(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(new TextDecoder('latin1').decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()).slice());
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const dict = new PyDict();
        setItems(dict, popMark());
        stack.push(dict);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const value = pop();
        const list = top();
        if (!Array.isArray(list)) fail('pickle APPEND on a value that is not a list');
        (list as PickleValue[]).push(value);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) fail('pickle APPENDS on a value that is not a list');
        (list as PickleValue[]).push(...items);
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const second = pop();
        stack.push([pop(), second]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const third = pop();
        const second = pop();
        stack.push([pop(), second, third]);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set<PickleValue>());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const set = top();
        if (!(set instanceof Set)) fail('pickle ADDITEMS on a value that is not a set');
        for (const item of items) (set as Set<PickleValue>).add(item);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x63: {
        // GLOBAL: "module\nname\n"
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('pickle STACK_GLOBAL with a non-string name');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(apply(pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        stack.push(apply(pop(), args));
        break;
      }
      case 0x62: {
        // BUILD: only attribute dicts on a dict (OrderedDict's `_metadata`) are accepted
        const state = pop();
        const target = top();
        if (target instanceof PyDict && state instanceof PyDict) {
          for (const [key, value] of state.entries) target.attributes.set(String(key), value);
        } else if (!(target instanceof PyDict && state === null)) {
          fail(`pickle BUILD on an unsupported object at byte ${at}`);
        }
        break;
      }
      case 0x51: // BINPERSID
        stack.push(options.persistentLoad(pop()));
        break;
      default:
        fail(`unsupported pickle opcode 0x${opcode.toString(16).padStart(2, '0')} ('${String.fromCharCode(opcode)}') at byte ${at}`);
    }
  }
}
