import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

/** Writes an 8-bit PNG from [H,W] (grey) or [H,W,3] (RGB) bytes, creating the folder. */
export async function writePng(file: string, data: Uint8Array, height: number, width: number, channels: 1 | 3): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels } }).png().toFile(file);
}
