import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { readCheckpoint } from '../src/checkpoint/segkit-checkpoint';
import { readSafetensors } from '../src/checkpoint/safetensors';
import { readCheckpointFile } from '../src/checkpoint';
import { errorMessage } from '../src/testing';

interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Buffer;
}

/** A safetensors file as Python's `safetensors` lays it out: u64 header length, JSON header, then the bytes. */
function safetensorsBytes(tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    header[name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + tensor.bytes.length] };
    offset += tensor.bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...Object.values(tensors).map((tensor) => tensor.bytes)]);
}

const u16 = (...bits: number[]) => Buffer.from(Uint16Array.from(bits).buffer);
const f64 = (...values: number[]) => Buffer.from(Float64Array.from(values).buffer);
const i64 = (...values: bigint[]) => Buffer.from(BigInt64Array.from(values).buffer);
const i16 = (...values: number[]) => Buffer.from(Int16Array.from(values).buffer);
const i8 = (...values: number[]) => Buffer.from(Int8Array.from(values).buffer);
const u8 = (...values: number[]) => Buffer.from(Uint8Array.from(values));

describe('checkpoint: safetensors dtypes written by Python', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-st-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, bytes: Buffer) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    return file;
  };

  it('reads F16, BF16 and F64 as float32, I64, I16, I8, U8 and BOOL as int32, with their shapes', () => {
    const file = write(
      'dtypes.safetensors',
      safetensorsBytes({
        // 1, -2.5, 65504 (largest half), 2^-24 (smallest subnormal), -0
        half: { dtype: 'F16', shape: [5], bytes: u16(0x3c00, 0xc100, 0x7bff, 0x0001, 0x8000) },
        // 1, -3.140625, 2^100
        bfloat: { dtype: 'BF16', shape: [3, 1], bytes: u16(0x3f80, 0xc049, 0x7180) },
        double: { dtype: 'F64', shape: [2], bytes: f64(0.1, -2.5e10) },
        long: { dtype: 'I64', shape: [2, 2], bytes: i64(0n, -1n, 2147483647n, -2147483648n) },
        short: { dtype: 'I16', shape: [2], bytes: i16(-32768, 32767) },
        byte: { dtype: 'I8', shape: [2], bytes: i8(-128, 127) },
        ubyte: { dtype: 'U8', shape: [2], bytes: u8(0, 255) },
        flags: { dtype: 'BOOL', shape: [3], bytes: u8(1, 0, 1) },
        scalar: { dtype: 'I64', shape: [], bytes: i64(42n) },
        float: { dtype: 'F32', shape: [1], bytes: Buffer.from(Float32Array.from([1.5]).buffer) },
      }),
    );
    const { tensors, metadata } = readSafetensors(file);
    expect(metadata).to.deep.equal({});
    const read = (name: string) => ({ dtype: tensors.get(name)!.dtype, shape: tensors.get(name)!.shape, values: Array.from(tensors.get(name)!.data) });
    expect(read('half')).to.deep.equal({ dtype: 'float32', shape: [5], values: [1, -2.5, 65504, 2 ** -24, -0] });
    expect(Object.is(read('half').values[4], -0)).to.equal(true);
    expect(read('bfloat')).to.deep.equal({ dtype: 'float32', shape: [3, 1], values: [1, -3.140625, 2 ** 100] });
    expect(read('double')).to.deep.equal({ dtype: 'float32', shape: [2], values: [Math.fround(0.1), Math.fround(-2.5e10)] });
    expect(read('long')).to.deep.equal({ dtype: 'int32', shape: [2, 2], values: [0, -1, 2147483647, -2147483648] });
    expect(read('short')).to.deep.equal({ dtype: 'int32', shape: [2], values: [-32768, 32767] });
    expect(read('byte')).to.deep.equal({ dtype: 'int32', shape: [2], values: [-128, 127] });
    expect(read('ubyte')).to.deep.equal({ dtype: 'int32', shape: [2], values: [0, 255] });
    expect(read('flags')).to.deep.equal({ dtype: 'int32', shape: [3], values: [1, 0, 1] });
    expect(read('scalar')).to.deep.equal({ dtype: 'int32', shape: [], values: [42] });
    expect(read('float')).to.deep.equal({ dtype: 'float32', shape: [1], values: [1.5] });
  });

  it("a PyTorch-layout file from Python (format 'pt') loads through readCheckpointFile and segkit's reader", async () => {
    const before = tf.memory().numTensors;
    // A conv weight [out 2, in 1, 1, 1] in float16 and a BatchNorm counter in int64, as safetensors.torch.save_file writes them.
    const file = write(
      'model.safetensors',
      safetensorsBytes({ 'conv.weight': { dtype: 'F16', shape: [2, 1, 1, 1], bytes: u16(0x3800, 0xbc00) }, 'bn.num_batches_tracked': { dtype: 'I64', shape: [], bytes: i64(7n) } }, { format: 'pt' }),
    );
    const contents = await readCheckpointFile(file);
    expect(contents.layout).to.equal('torch');
    expect(Array.from(contents.tensors.get('conv.weight')!.data)).to.deep.equal([0.5, -1]);
    expect(Array.from(contents.tensors.get('bn.num_batches_tracked')!.data)).to.deep.equal([7]);
    const checkpoint = readCheckpoint(file);
    expect(checkpoint.weights.get('bn.num_batches_tracked')!.dtype).to.equal('int32');
    checkpoint.dispose();
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });

  it('an I64 value outside the int32 range is an error naming the file and the tensor', async () => {
    const file = write('overflow.safetensors', safetensorsBytes({ ok: { dtype: 'I64', shape: [1], bytes: i64(1n) }, steps: { dtype: 'I64', shape: [2], bytes: i64(1n, 1n << 40n) } }));
    expect(await errorMessage(() => readSafetensors(file))).to.equal(`${file}: tensor 'steps' holds the int64 value 1099511627776, outside the int32 range segkit's tensors use`);
  });

  it('a byte length that does not fit the dtype and shape, or an unknown dtype, is an error naming the tensor', async () => {
    const short = write('short.safetensors', safetensorsBytes({ w: { dtype: 'F16', shape: [3], bytes: u16(0, 0) } }));
    expect(await errorMessage(() => readSafetensors(short))).to.equal(`${short}: not a valid safetensors checkpoint (tensor w has 4 bytes for shape [3] of F16)`);
    const fp8 = write('fp8.safetensors', safetensorsBytes({ q: { dtype: 'F8_E4M3', shape: [1], bytes: u8(0) } }));
    expect(await errorMessage(() => readSafetensors(fp8))).to.equal(
      `${fp8}: not a valid safetensors checkpoint (tensor q has unsupported dtype F8_E4M3 (readable: F32, I32, F16, BF16, F64, I64, I16, I8, U8, BOOL))`,
    );
  });
});
