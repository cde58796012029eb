import * as fs from 'fs';
import { SegkitError } from '../errors';
import { writeFileAtomic } from './atomic-file';
import { materializeTensor, STORAGE_TYPES, type StorageTypeName, type TensorRef } from './torch-tensors';

/** A tensor's raw values as stored in a checkpoint (float32 or int32, row-major). */
export interface StoredTensor {
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

const DTYPE_CODES = { float32: 'F32', int32: 'I32' } as const;
const CODE_DTYPES: Record<string, StoredTensor['dtype']> = { F32: 'float32', I32: 'int32' };
/**
 * The other dtypes Python's safetensors writes, read through the `.pth` reader's element conversion (by torch
 * storage class): floats become float32, integers and bool int32 (an I64 value outside the int32 range is an
 * error naming the tensor).
 */
const CONVERTED_CODES: Record<string, StorageTypeName> = {
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  F64: 'DoubleStorage',
  I64: 'LongStorage',
  I16: 'ShortStorage',
  I8: 'CharStorage',
  U8: 'ByteStorage',
  BOOL: 'BoolStorage',
};

/**
 * Writes the safetensors format (8-byte little-endian header length, JSON header with dtype, shape
 * and byte offsets per tensor plus string `__metadata__`, then the raw little-endian bytes), so
 * checkpoints can be read by Python's `safetensors` too. Written atomically (`writeFileAtomic`), so an
 * interrupted or failed save never leaves a truncated checkpoint behind.
 */
export function writeSafetensors(file: string, tensors: Map<string, StoredTensor>, metadata: Record<string, string>): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, tensor] of tensors) {
    const bytes = tensor.data.byteLength;
    header[name] = { dtype: DTYPE_CODES[tensor.dtype], shape: tensor.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let headerText = JSON.stringify(header);
  // The data must start 8-byte aligned: pad the header with spaces (allowed by the format).
  headerText += ' '.repeat((8 - ((8 + Buffer.byteLength(headerText)) % 8)) % 8);
  const headerBytes = Buffer.from(headerText, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  writeFileAtomic(file, (fd) => {
    fs.writeSync(fd, prefix);
    fs.writeSync(fd, headerBytes);
    for (const tensor of tensors.values()) fs.writeSync(fd, new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
  });
}

/**
 * Reads a safetensors file: F32 and I32 as they are; F16, BF16, F64 as float32; I64, I16, I8, U8, BOOL as
 * int32 (an I64 value outside the int32 range is an error naming the file and the tensor).
 */
export function readSafetensors(file: string): { tensors: Map<string, StoredTensor>; metadata: Record<string, string> } {
  if (!fs.existsSync(file)) throw new SegkitError(`checkpoint not found: ${file}`);
  const buffer = fs.readFileSync(file);
  const fail = (why: string): never => {
    throw new SegkitError(`${file}: not a valid safetensors checkpoint (${why})`);
  };
  if (buffer.length < 8) fail('file too short');
  const headerLength = Number(buffer.readBigUInt64LE(0));
  if (8 + headerLength > buffer.length) fail('header length past the end of the file');
  let header: Record<string, any>;
  try {
    header = JSON.parse(buffer.subarray(8, 8 + headerLength).toString('utf8'));
  } catch {
    return fail('header is not JSON');
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, StoredTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = CODE_DTYPES[entry?.dtype];
    const converted = CONVERTED_CODES[entry?.dtype];
    if (!dtype && !converted) fail(`tensor ${name} has unsupported dtype ${entry?.dtype} (readable: ${[...Object.keys(CODE_DTYPES), ...Object.keys(CONVERTED_CODES)].join(', ')})`);
    const shape = entry.shape as number[];
    const offsets = entry.data_offsets as [number, number];
    if (!Array.isArray(shape) || !shape.every((size) => Number.isInteger(size) && size >= 0)) fail(`tensor ${name} has a malformed shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((at) => Number.isInteger(at) && at >= 0)) fail(`tensor ${name} has malformed data_offsets`);
    const [begin, end] = offsets;
    if (dataStart + end > buffer.length || begin > end) fail(`tensor ${name} lies outside the file`);
    // Copy into an aligned buffer: the slice of the file buffer need not be aligned for its element type.
    const bytes = new Uint8Array(end - begin);
    bytes.set(buffer.subarray(dataStart + begin, dataStart + end));
    const expected = shape.reduce((a, b) => a * b, 1);
    const elementBytes = converted ? STORAGE_TYPES[converted].bytes : 4;
    if (bytes.byteLength !== expected * elementBytes) fail(`tensor ${name} has ${bytes.byteLength} bytes for shape [${shape}] of ${entry.dtype}`);
    if (dtype) {
      const data = dtype === 'float32' ? new Float32Array(bytes.buffer) : new Int32Array(bytes.buffer);
      tensors.set(name, { dtype, shape, data });
    } else {
      const strides = shape.map((_, axis) => shape.slice(axis + 1).reduce((a, b) => a * b, 1));
      const ref: TensorRef = { tensor: true, storage: { persistent: true, key: name, type: converted!, numel: expected }, offset: 0, shape, stride: strides };
      tensors.set(name, materializeTensor(ref, bytes, name, file));
    }
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}
