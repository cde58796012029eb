import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { createKernel, readLabelMap, type Kernel, type NdArray } from '@segkit/core';
import { plugin } from '../src';

export const fixtures = path.resolve(__dirname, '../../test/fixtures');
export const configsDir = path.resolve(__dirname, '../../../../configs/_base_/datasets');

const silent = { info: () => undefined, warn: () => undefined };
let kernel: Kernel | undefined;

/** A kernel with this plugin and @segkit/transforms (by package name, as configs list it). */
export async function dataKernel(): Promise<Kernel> {
  kernel ??= await createKernel({ plugins: [plugin, '@segkit/transforms'], backend: 'cpu', logger: silent });
  return kernel;
}

const tempDirs: string[] = [];

/** A fresh temporary folder, removed after the test run. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-datasets-'));
  tempDirs.push(dir);
  return dir;
}

after(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

export async function errorOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected an error');
}

/** A label PNG's values, read the way LoadAnnotations reads it. */
export function readGrey(file: string): Promise<NdArray<Uint8Array>> {
  return readLabelMap(file);
}

export function histogram(values: ArrayLike<number>): Record<number, number> {
  const counts: Record<number, number> = {};
  for (let i = 0; i < values.length; i++) counts[values[i]!] = (counts[values[i]!] ?? 0) + 1;
  return counts;
}

/** A zip archive of `files` (name → bytes): deflated when `deflate`, else stored. */
export function makeZip(files: Record<string, Buffer>, deflate = true): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(files)) {
    const compressed = deflate ? zlib.deflateRawSync(data) : data;
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = zlib.crc32(data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(deflate ? 8 : 0, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, compressed);
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + compressed.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}
