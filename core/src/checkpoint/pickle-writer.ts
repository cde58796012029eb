/**
 * Values the pickle writer emits. Plain objects are dicts; `PickleOrderedDict` is collections.OrderedDict
 * (what torch's state_dict() is); `PickleTuple` a tuple; `PickleTensorRef` a torch tensor written with
 * `torch._utils._rebuild_tensor_v2` over a storage that `torch.load` finds as `data/<key>` in the archive.
 */
export type PickleWritable =
  | null
  | boolean
  | number
  | bigint
  | string
  | PickleWritable[]
  | PickleTuple
  | PickleOrderedDict
  | PickleTensorRef
  | { [key: string]: PickleWritable };

export class PickleTuple {
  constructor(readonly items: PickleWritable[]) {}
}

export class PickleOrderedDict {
  constructor(readonly entries: [string, PickleWritable][]) {}
}

export class PickleTensorRef {
  constructor(
    /** torch storage class (`FloatStorage`, `LongStorage`, ...). */
    readonly storageType: string,
    /** Record name under `data/`. */
    readonly storageKey: string,
    /** Elements in the storage. */
    readonly storageSize: number,
    readonly shape: readonly number[],
  ) {}
}

/** Appends bytes into a growing buffer. */
class ByteWriter {
  private buffer = Buffer.alloc(1024);
  length = 0;

  private reserve(count: number): void {
    if (this.length + count <= this.buffer.length) return;
    const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + count));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  byte(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  bytes(values: Uint8Array): void {
    this.reserve(values.length);
    this.buffer.set(values, this.length);
    this.length += values.length;
  }

  uint16(value: number): void {
    this.reserve(2);
    this.buffer.writeUInt16LE(value, this.length);
    this.length += 2;
  }

  int32(value: number): void {
    this.reserve(4);
    this.buffer.writeInt32LE(value, this.length);
    this.length += 4;
  }

  uint32(value: number): void {
    this.reserve(4);
    this.buffer.writeUInt32LE(value, this.length);
    this.length += 4;
  }

  float64BigEndian(value: number): void {
    this.reserve(8);
    this.buffer.writeDoubleBE(value, this.length);
    this.length += 8;
  }

  result(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

/** Items per SETITEMS / APPENDS, as Python's pickler batches them. */
const BATCH = 1000;

/**
 * Pickles `value` with protocol 2, using only the opcodes Python's own pickler emits for these types (and
 * that torch.load's `weights_only` unpickler accepts): BINUNICODE strings, BININT, BININT1, BININT2 and LONG1 ints, BINFLOAT,
 * dict/list/tuple opcodes, GLOBAL + REDUCE for OrderedDict and `_rebuild_tensor_v2`, BINPERSID storages.
 */
export function pickle(value: PickleWritable): Buffer {
  const out = new ByteWriter();
  out.byte(0x80);
  out.byte(2);
  writeValue(out, value);
  out.byte(0x2e); // STOP
  return out.result();
}

function writeGlobal(out: ByteWriter, module: string, name: string): void {
  out.byte(0x63); // GLOBAL
  out.bytes(Buffer.from(`${module}\n${name}\n`, 'latin1'));
}

function writeString(out: ByteWriter, value: string): void {
  const encoded = Buffer.from(value, 'utf8');
  out.byte(0x58); // BINUNICODE
  out.uint32(encoded.length);
  out.bytes(encoded);
}

function writeInt(out: ByteWriter, value: number | bigint): void {
  if (typeof value === 'number' && value >= 0 && value < 256) {
    out.byte(0x4b); // BININT1
    out.byte(value);
  } else if (typeof value === 'number' && value >= 0 && value < 65536) {
    out.byte(0x4d); // BININT2
    out.uint16(value);
  } else if (typeof value === 'number' && value >= -(2 ** 31) && value < 2 ** 31) {
    out.byte(0x4a); // BININT
    out.int32(value);
  } else {
    // LONG1: little-endian two's complement, as few bytes as keep the sign.
    let rest = BigInt(value);
    const bytes: number[] = [];
    for (;;) {
      const byte = Number(rest & 0xffn);
      bytes.push(byte);
      rest >>= 8n;
      if ((rest === 0n && !(byte & 0x80)) || (rest === -1n && byte & 0x80)) break;
    }
    out.byte(0x8a);
    out.byte(bytes.length);
    out.bytes(Uint8Array.from(bytes));
  }
}

function writeTuple(out: ByteWriter, items: PickleWritable[]): void {
  if (items.length === 0) {
    out.byte(0x29); // EMPTY_TUPLE
    return;
  }
  if (items.length <= 3) {
    for (const item of items) writeValue(out, item);
    out.byte([0x85, 0x86, 0x87][items.length - 1]!); // TUPLE1..3
    return;
  }
  out.byte(0x28); // MARK
  for (const item of items) writeValue(out, item);
  out.byte(0x74); // TUPLE
}

function writeDictItems(out: ByteWriter, entries: [string, PickleWritable][]): void {
  for (let start = 0; start < entries.length; start += BATCH) {
    out.byte(0x28); // MARK
    for (const [key, item] of entries.slice(start, start + BATCH)) {
      writeString(out, key);
      writeValue(out, item);
    }
    out.byte(0x75); // SETITEMS
  }
}

function writeEmptyOrderedDict(out: ByteWriter): void {
  writeGlobal(out, 'collections', 'OrderedDict');
  out.byte(0x29); // EMPTY_TUPLE
  out.byte(0x52); // REDUCE
}

function writeTensor(out: ByteWriter, tensor: PickleTensorRef): void {
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)
  writeGlobal(out, 'torch._utils', '_rebuild_tensor_v2');
  out.byte(0x28); // MARK
  // The persistent id ('storage', torch.<Type>Storage, key, location, numel) that torch.load resolves.
  out.byte(0x28); // MARK
  writeString(out, 'storage');
  writeGlobal(out, 'torch', tensor.storageType);
  writeString(out, tensor.storageKey);
  writeString(out, 'cpu');
  writeInt(out, tensor.storageSize);
  out.byte(0x74); // TUPLE
  out.byte(0x51); // BINPERSID
  writeInt(out, 0);
  writeTuple(out, [...tensor.shape]);
  writeTuple(out, contiguousStrides(tensor.shape));
  out.byte(0x89); // NEWFALSE: requires_grad
  writeEmptyOrderedDict(out); // backward_hooks
  out.byte(0x74); // TUPLE
  out.byte(0x52); // REDUCE
}

function writeValue(out: ByteWriter, value: PickleWritable): void {
  if (value === null) out.byte(0x4e); // NONE
  else if (value === true) out.byte(0x88);
  else if (value === false) out.byte(0x89);
  else if (typeof value === 'bigint') writeInt(out, value);
  else if (typeof value === 'number') {
    if (Number.isInteger(value) && Number.isSafeInteger(value)) writeInt(out, value);
    else {
      out.byte(0x47); // BINFLOAT
      out.float64BigEndian(value);
    }
  } else if (typeof value === 'string') writeString(out, value);
  else if (Array.isArray(value)) {
    out.byte(0x5d); // EMPTY_LIST
    for (let start = 0; start < value.length; start += BATCH) {
      out.byte(0x28); // MARK
      for (const item of value.slice(start, start + BATCH)) writeValue(out, item);
      out.byte(0x65); // APPENDS
    }
  } else if (value instanceof PickleTuple) writeTuple(out, value.items);
  else if (value instanceof PickleOrderedDict) {
    writeEmptyOrderedDict(out);
    writeDictItems(out, value.entries);
  } else if (value instanceof PickleTensorRef) writeTensor(out, value);
  else {
    out.byte(0x7d); // EMPTY_DICT
    writeDictItems(out, Object.entries(value));
  }
}

/** Row-major strides of a contiguous tensor. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    strides[axis] = stride;
    stride *= shape[axis]!;
  }
  return strides;
}
