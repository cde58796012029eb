import * as fs from 'fs';
import * as zlib from 'zlib';
import { SegkitError } from '../errors';

/** torch's PyTorchStreamWriter starts every record's data on a 64-byte boundary (what mmap loading needs). */
const ALIGNMENT = 64;
/** Extra-field id torch pads local headers with ('FB'). */
const PADDING_FIELD_ID = 0x4246;
/** 1980-01-01 00:00 in MS-DOS format: a fixed stamp keeps identical checkpoints byte-identical. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const LIMIT_32 = 0xffffffff;

interface WrittenRecord {
  name: Buffer;
  offset: number;
  size: number;
  crc: number;
}

/**
 * Writes a zip archive of STORED records the way torch.save lays them out (each record's data 64-byte
 * aligned through a padding extra field), streaming each record to the file descriptor as it is added.
 * Archives past 4 GiB (zip64) are refused with a clear error: no segmentation checkpoint comes near it.
 */
export class ZipWriter {
  private offset = 0;
  private readonly records: WrittenRecord[] = [];

  constructor(private readonly fd: number, private readonly file: string) {}

  private write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(this.fd, bytes, done, bytes.length - done);
    this.offset += bytes.length;
  }

  /** Adds one record whose data is the concatenation of `chunks`. */
  addRecord(recordName: string, chunks: readonly Uint8Array[]): void {
    const name = Buffer.from(recordName, 'utf8');
    const size = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    let crc = 0;
    for (const chunk of chunks) crc = zlib.crc32(chunk, crc);
    const headerStart = this.offset;
    const unpadded = headerStart + 30 + name.length + 4;
    const padding = (ALIGNMENT - (unpadded % ALIGNMENT)) % ALIGNMENT;
    if (headerStart + 30 + name.length + 4 + padding + size > LIMIT_32) {
      throw new SegkitError(`${this.file}: the checkpoint would exceed 4 GiB, which segkit's .pth writer does not support (zip64)`);
    }
    const header = Buffer.alloc(30 + name.length + 4 + padding);
    header.writeUInt32LE(0x04034b50, 0); // local file header signature
    header.writeUInt16LE(20, 4); // version needed to extract (2.0)
    header.writeUInt16LE(name.some((byte) => byte > 0x7f) ? 1 << 11 : 0, 6); // UTF-8 name flag
    header.writeUInt16LE(0, 8); // STORED
    header.writeUInt16LE(0, 10); // time
    header.writeUInt16LE(DOS_DATE, 12);
    header.writeUInt32LE(crc >>> 0, 14);
    header.writeUInt32LE(size, 18); // compressed size
    header.writeUInt32LE(size, 22); // uncompressed size
    header.writeUInt16LE(name.length, 26);
    header.writeUInt16LE(4 + padding, 28);
    name.copy(header, 30);
    header.writeUInt16LE(PADDING_FIELD_ID, 30 + name.length);
    header.writeUInt16LE(padding, 32 + name.length);
    header.fill(0x5a, 34 + name.length); // torch pads with 'Z'
    this.write(header);
    for (const chunk of chunks) this.write(chunk);
    this.records.push({ name, offset: headerStart, size, crc: crc >>> 0 });
  }

  /** Writes the central directory and end record; the caller closes the descriptor. */
  finish(): void {
    if (this.records.length > 0xffff) throw new SegkitError(`${this.file}: more than 65535 records need zip64, which segkit's .pth writer does not support`);
    const directoryStart = this.offset;
    for (const record of this.records) {
      const entry = Buffer.alloc(46 + record.name.length);
      entry.writeUInt32LE(0x02014b50, 0); // central directory signature
      entry.writeUInt16LE(20, 4); // version made by
      entry.writeUInt16LE(20, 6); // version needed
      entry.writeUInt16LE(record.name.some((byte) => byte > 0x7f) ? 1 << 11 : 0, 8);
      entry.writeUInt16LE(0, 10); // STORED
      entry.writeUInt16LE(0, 12);
      entry.writeUInt16LE(DOS_DATE, 14);
      entry.writeUInt32LE(record.crc, 16);
      entry.writeUInt32LE(record.size, 20);
      entry.writeUInt32LE(record.size, 24);
      entry.writeUInt16LE(record.name.length, 28);
      // extra length, comment length, disk number, internal and external attributes stay 0
      entry.writeUInt32LE(record.offset, 42);
      record.name.copy(entry, 46);
      this.write(entry);
    }
    const directorySize = this.offset - directoryStart;
    if (this.offset > LIMIT_32) throw new SegkitError(`${this.file}: the checkpoint would exceed 4 GiB, which segkit's .pth writer does not support (zip64)`);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0); // end of central directory signature
    end.writeUInt16LE(this.records.length, 8);
    end.writeUInt16LE(this.records.length, 10);
    end.writeUInt32LE(directorySize, 12);
    end.writeUInt32LE(directoryStart, 16);
    this.write(end);
  }
}
