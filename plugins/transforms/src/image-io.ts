import * as fs from 'fs';
import { decode as decodePng } from 'fast-png';
import sharp from 'sharp';
import { SegkitError, type NdArray } from '@segkit/core';

function readFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SegkitError(`${what}: cannot read ${file}${code === 'ENOENT' ? ' (file not found)' : `: ${(error as Error).message}`}`);
  }
}

/** Decodes an image file to 3-channel uint8 in **BGR** order (OpenCV's `imread` convention, as MMSegmentation). */
export async function readImageBgr(file: string): Promise<NdArray<Uint8Array>> {
  const bytes = readFile(file, 'LoadImageFromFile');
  let decoded: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    decoded = await sharp(bytes).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new SegkitError(`LoadImageFromFile: cannot decode ${file}: ${(error as Error).message}`);
  }
  const { width, height, channels } = decoded.info;
  const src = decoded.data;
  const out = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; p < width * height; p++, q += channels) {
    if (channels < 3) {
      out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = src[q]!; // grey (and alpha): replicate like IMREAD_COLOR
    } else {
      out[p * 3] = src[q + 2]!;
      out[p * 3 + 1] = src[q + 1]!;
      out[p * 3 + 2] = src[q]!;
    }
  }
  return { data: out, shape: [height, width, 3] };
}

/** Spreads 1/2/4-bit packed PNG samples (rows byte-aligned, most significant bits first) to one byte each. */
function unpackBits(packed: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = packed[y * rowBytes + (bit >> 3)]!;
      out[y * width + x] = (byte >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

/**
 * Reads a label map like Pillow's "unchanged" + `astype(uint8)` in MMSegmentation's LoadAnnotations:
 * palette PNGs give their **indices** (not colours), 16-bit values wrap to 8 bits, grey PNGs give their values.
 * A colour PNG is accepted only when its channels are equal (a grey map saved as RGB).
 */
export async function readLabelMap(file: string): Promise<NdArray<Uint8Array>> {
  const bytes = readFile(file, 'LoadAnnotations');
  const isPng = bytes.length > 8 && bytes.readUInt32BE(0) === 0x89504e47;
  let width: number, height: number, channels: number, values: ArrayLike<number>;
  if (isPng) {
    let png: ReturnType<typeof decodePng>;
    try {
      png = decodePng(bytes);
    } catch (error) {
      throw new SegkitError(`LoadAnnotations: cannot decode label map ${file}: ${(error as Error).message}`);
    }
    ({ width, height, channels } = png);
    values = png.depth < 8 ? unpackBits(png.data as Uint8Array, width, height, png.depth) : png.data;
  } else {
    try {
      const decoded = await sharp(bytes).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      ({ width, height, channels } = decoded.info);
      values = decoded.data;
    } catch (error) {
      throw new SegkitError(`LoadAnnotations: cannot decode label map ${file}: ${(error as Error).message}`);
    }
  }
  const out = new Uint8Array(width * height);
  if (channels === 1 && values instanceof Uint8Array) {
    out.set(values);
    return { data: out, shape: [height, width] };
  }
  // 16-bit, grey + alpha (2) or RGB(A): the label is the first channel, the others must agree with it.
  const colour = channels >= 3 ? 3 : 1;
  for (let p = 0; p < out.length; p++) {
    const v = values[p * channels]!;
    for (let k = 1; k < colour; k++) {
      if (values[p * channels + k] !== v) {
        throw new SegkitError(`LoadAnnotations: ${file} is a colour image (pixel ${p % width},${Math.floor(p / width)} has different channel values); expected a single-channel or palette PNG of class indices`);
      }
    }
    out[p] = v & 0xff;
  }
  return { data: out, shape: [height, width] };
}
