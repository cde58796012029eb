import * as fs from 'fs';
import * as zlib from 'zlib';
import { SegkitError } from '@segkit/core';

export interface ZipEntry {
  /** Path inside the archive, '/'-separated. */
  name: string;
  /** The uncompressed bytes. */
  read(): Buffer;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** Lists the files of a zip archive (stored or deflated entries; no ZIP64, no encryption) using Node's zlib. */
export function readZip(file: string): ZipEntry[] {
  if (!fs.existsSync(file)) throw new SegkitError(`${file}: zip file not found`);
  const bytes = fs.readFileSync(file);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (bytes.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new SegkitError(`${file}: not a zip archive (no end-of-central-directory record)`);
  const count = bytes.readUInt16LE(eocd + 10);
  let offset = bytes.readUInt32LE(eocd + 16);
  if (count === 0xffff || offset === 0xffffffff) throw new SegkitError(`${file}: ZIP64 archives are not supported; re-zip it without ZIP64`);
  const entries: ZipEntry[] = [];
  for (let k = 0; k < count; k++) {
    if (bytes.readUInt32LE(offset) !== CENTRAL) throw new SegkitError(`${file}: corrupt zip central directory (entry ${k})`);
    const flags = bytes.readUInt16LE(offset + 8);
    const method = bytes.readUInt16LE(offset + 10);
    const crc = bytes.readUInt32LE(offset + 16);
    const compressedSize = bytes.readUInt32LE(offset + 20);
    const size = bytes.readUInt32LE(offset + 24);
    const nameLength = bytes.readUInt16LE(offset + 28);
    const extraLength = bytes.readUInt16LE(offset + 30);
    const commentLength = bytes.readUInt16LE(offset + 32);
    const localOffset = bytes.readUInt32LE(offset + 42);
    const name = bytes.toString('utf8', offset + 46, offset + 46 + nameLength);
    offset += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith('/')) continue;
    entries.push({
      name,
      read() {
        if (flags & 1) throw new SegkitError(`${file}: ${name} is encrypted`);
        if (bytes.readUInt32LE(localOffset) !== LOCAL) throw new SegkitError(`${file}: corrupt local header of ${name}`);
        const start = localOffset + 30 + bytes.readUInt16LE(localOffset + 26) + bytes.readUInt16LE(localOffset + 28);
        const raw = bytes.subarray(start, start + compressedSize);
        let data: Buffer;
        if (method === 0) data = Buffer.from(raw);
        else if (method === 8) data = zlib.inflateRawSync(raw);
        else throw new SegkitError(`${file}: ${name} uses compression method ${method}; only stored (0) and deflate (8) are supported`);
        if (data.length !== size || ((zlib as { crc32?: (d: Buffer) => number }).crc32 && zlib.crc32(data) >>> 0 !== crc)) {
          throw new SegkitError(`${file}: ${name} is corrupt (size or CRC mismatch)`);
        }
        return data;
      },
    });
  }
  return entries;
}
