import { maskedCrc32c } from './crc32c';

/**
 * One TFRecord: uint64 little-endian length, masked CRC-32C of those 8 bytes, the data, masked CRC-32C
 * of the data (tensorflow/core/lib/io/record_writer.cc) — the framing of every TensorBoard event file.
 */
export function frameRecord(data: Uint8Array): Buffer {
  const record = Buffer.alloc(8 + 4 + data.length + 4);
  record.writeBigUInt64LE(BigInt(data.length), 0);
  record.writeUInt32LE(maskedCrc32c(record.subarray(0, 8)), 8);
  record.set(data, 12);
  record.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return record;
}
