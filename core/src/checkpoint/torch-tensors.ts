import { SegkitError } from '../errors';
import { PyGlobal, type PickleValue } from './pickle-reader';
import type { StoredTensor } from './safetensors';

/** A tensor's values on the host: float32 or int32, row-major (the safetensors writer's type). */
export type TensorData = StoredTensor;

/** torch's storage classes (as `torch.save` names them in a persistent id) and their element types. */
export const STORAGE_TYPES = {
  FloatStorage: { dtype: 'float32', bytes: 4 },
  HalfStorage: { dtype: 'float16', bytes: 2 },
  BFloat16Storage: { dtype: 'bfloat16', bytes: 2 },
  DoubleStorage: { dtype: 'float64', bytes: 8 },
  LongStorage: { dtype: 'int64', bytes: 8 },
  IntStorage: { dtype: 'int32', bytes: 4 },
  ShortStorage: { dtype: 'int16', bytes: 2 },
  ByteStorage: { dtype: 'uint8', bytes: 1 },
  CharStorage: { dtype: 'int8', bytes: 1 },
  BoolStorage: { dtype: 'bool', bytes: 1 },
} as const;

export type StorageTypeName = keyof typeof STORAGE_TYPES;
export type TorchDtype = (typeof STORAGE_TYPES)[StorageTypeName]['dtype'];

/** The storage class a persistent id names (`torch.FloatStorage`, ...); anything else is an error. */
export function storageTypeOf(value: PickleValue, source: string): StorageTypeName {
  if (!(value instanceof PyGlobal) || value.module !== 'torch' || !(value.name in STORAGE_TYPES)) {
    throw new SegkitError(`${source}: unsupported storage type in a persistent id${value instanceof PyGlobal ? ` (${value.qualifiedName})` : ''}`);
  }
  return value.name as StorageTypeName;
}

/** A storage named by a persistent id; its bytes are read only if a tensor that is kept refers to it. */
export interface StorageRef {
  readonly persistent: true;
  readonly key: string;
  readonly type: StorageTypeName;
  readonly numel: number;
}

/** A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage. */
export interface TensorRef {
  readonly tensor: true;
  readonly storage: StorageRef;
  readonly offset: number;
  readonly shape: number[];
  readonly stride: number[];
}

export function isTensorRef(value: unknown): value is TensorRef {
  return typeof value === 'object' && value !== null && (value as TensorRef).tensor === true;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** float16 bits → float32 for all 65536 patterns (256 KB, built once). */
let halfTable: Float32Array | null = null;
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    halfTable[bits] =
      exponent === 0 ? sign * 2 ** -14 * (fraction / 1024) : exponent === 31 ? (fraction ? NaN : sign * Infinity) : sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return halfTable;
}

/** Element reader of a storage's bytes in the output's number space. */
function elementReader(bytes: Uint8Array, type: StorageTypeName, describe: () => string): (index: number) => number {
  const buffer = bytes.buffer;
  const at = bytes.byteOffset;
  const count = Math.floor(bytes.byteLength / STORAGE_TYPES[type].bytes);
  switch (type) {
    case 'FloatStorage': {
      const values = new Float32Array(buffer, at, count);
      return (i) => values[i]!;
    }
    case 'DoubleStorage': {
      const values = new Float64Array(buffer, at, count);
      return (i) => values[i]!;
    }
    case 'HalfStorage': {
      const values = new Uint16Array(buffer, at, count);
      const table = halfToFloatTable();
      return (i) => table[values[i]!]!;
    }
    case 'BFloat16Storage': {
      // bfloat16 is the top half of a float32.
      const values = new Uint16Array(buffer, at, count);
      const word = new Uint32Array(1);
      const asFloat = new Float32Array(word.buffer);
      return (i) => {
        word[0] = values[i]! << 16;
        return asFloat[0]!;
      };
    }
    case 'LongStorage': {
      const words = new Int32Array(buffer, at, count * 2);
      return (i) => {
        const low = words[2 * i]!;
        const high = words[2 * i + 1]!;
        if (high !== low >> 31) {
          const value = (BigInt(high) << 32n) | BigInt(low >>> 0);
          throw new SegkitError(`${describe()} holds the int64 value ${value}, outside the int32 range segkit's tensors use`);
        }
        return low;
      };
    }
    case 'IntStorage': {
      const values = new Int32Array(buffer, at, count);
      return (i) => values[i]!;
    }
    case 'ShortStorage': {
      const values = new Int16Array(buffer, at, count);
      return (i) => values[i]!;
    }
    case 'ByteStorage':
    case 'BoolStorage': {
      const values = new Uint8Array(buffer, at, count);
      return (i) => values[i]!;
    }
    case 'CharStorage': {
      const values = new Int8Array(buffer, at, count);
      return (i) => values[i]!;
    }
  }
}

const isFloatType = (type: StorageTypeName) => ['FloatStorage', 'HalfStorage', 'BFloat16Storage', 'DoubleStorage'].includes(type);

/**
 * Materialises a strided view of a storage as a dense row-major tensor: float storages become float32,
 * integer and bool storages int32 (int64 values outside the int32 range are an error naming the tensor).
 * A contiguous float32/int32 view shares the storage's memory instead of copying it.
 */
export function materializeTensor(ref: TensorRef, storageBytes: Uint8Array, name: string, source: string): TensorData {
  const { storage, offset, shape, stride } = ref;
  const describe = () => `${source}: tensor '${name}'`;
  const count = numel(shape);
  const elementBytes = STORAGE_TYPES[storage.type].bytes;
  const available = Math.floor(storageBytes.byteLength / elementBytes);
  if (count > 0) {
    const last = offset + shape.reduce((sum, size, axis) => sum + (size - 1) * stride[axis]!, 0);
    if (offset < 0 || last >= available || stride.some((s) => s < 0)) {
      throw new SegkitError(`${describe()} (shape [${shape}], stride [${stride}], offset ${offset}) reaches past its storage '${storage.key}' of ${available} elements`);
    }
  }
  const dtype = isFloatType(storage.type) ? 'float32' : 'int32';
  const contiguous = shape.every((size, axis) => size === 1 || stride[axis] === contiguousStride(shape, axis));
  if (contiguous && (storage.type === 'FloatStorage' || storage.type === 'IntStorage')) {
    const start = storageBytes.byteOffset + offset * 4;
    const data = storage.type === 'FloatStorage' ? new Float32Array(storageBytes.buffer, start, count) : new Int32Array(storageBytes.buffer, start, count);
    return { dtype, shape: [...shape], data };
  }
  const read = elementReader(storageBytes, storage.type, describe);
  const data = dtype === 'float32' ? new Float32Array(count) : new Int32Array(count);
  if (count === 0) return { dtype, shape: [...shape], data };
  const rank = shape.length;
  if (rank === 0) {
    data[0] = read(offset);
    return { dtype, shape: [], data };
  }
  // Walk the output in row-major order with an odometer over all axes but the last.
  const index = new Array<number>(rank).fill(0);
  const innerSize = shape[rank - 1]!;
  const innerStride = stride[rank - 1]!;
  let base = offset;
  for (let out = 0; out < count; out += innerSize) {
    for (let j = 0; j < innerSize; j++) data[out + j] = read(base + j * innerStride);
    for (let axis = rank - 2; axis >= 0; axis--) {
      index[axis]! += 1;
      base += stride[axis]!;
      if (index[axis]! < shape[axis]!) break;
      base -= shape[axis]! * stride[axis]!;
      index[axis] = 0;
    }
  }
  return { dtype, shape: [...shape], data };
}

function contiguousStride(shape: readonly number[], axis: number): number {
  let stride = 1;
  for (let i = axis + 1; i < shape.length; i++) stride *= shape[i]!;
  return stride;
}

/** Swaps each element's bytes in place (a checkpoint written on a big-endian machine). */
export function swapByteOrder(bytes: Uint8Array, elementBytes: number): void {
  if (elementBytes === 1) return;
  for (let start = 0; start + elementBytes <= bytes.length; start += elementBytes) {
    for (let i = 0, j = elementBytes - 1; i < j; i++, j--) {
      const byte = bytes[start + i]!;
      bytes[start + i] = bytes[start + j]!;
      bytes[start + j] = byte;
    }
  }
}
