import * as fs from 'fs';
import type { NdArray } from '../components';
import { SegkitError } from '../errors';
import { writeFileAtomic } from '../checkpoint/atomic-file';

// The codecs are optional dependencies of core, required on first use so that core loads without them (and
// code that only encodes PNGs never loads the native sharp addon). Minimal views of their APIs follow.

interface SharpRawResult {
  data: Buffer;
  info: { width: number; height: number; channels: number };
}

interface SharpPipeline {
  raw(options: { depth: 'uchar' }): { toBuffer(options: { resolveWithObject: true }): Promise<SharpRawResult> };
  png(): { toBuffer(): Promise<Buffer> };
}

type SharpFactory = (input: Buffer) => SharpPipeline;

interface DecodedPng {
  width: number;
  height: number;
  /** Bits per sample: 1, 2, 4, 8 or 16 (samples below 8 bits stay packed, rows byte-aligned). */
  depth: number;
  channels: number;
  data: Uint8Array | Uint8ClampedArray | Uint16Array;
}

interface FastPng {
  decode(data: ArrayBufferView): DecodedPng;
  encode(image: { width: number; height: number; data: Uint8Array; channels: number; depth: 8 }): Uint8Array;
}

/** `require(name)`, or one SegkitError saying which package `purpose` needs when it is not installed. */
function requireCodec<T>(name: 'sharp' | 'fast-png', purpose: string): T {
  try {
    return require(name) as T;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'MODULE_NOT_FOUND' && (error as Error).message.includes(`'${name}'`)) {
      throw new SegkitError(`${purpose} needs the ${name} package (an optional dependency of @segkit/core): npm install ${name}`);
    }
    // Installed but broken (e.g. sharp's native binary for another platform): its own message says why.
    throw new SegkitError(`${purpose}: cannot load the ${name} package: ${(error as Error).message}`);
  }
}

const loadSharp = (purpose: string): SharpFactory => requireCodec<SharpFactory>('sharp', purpose);
const loadFastPng = (purpose: string): FastPng => requireCodec<FastPng>('fast-png', purpose);

/** An encoded image: a file path, or the file's bytes (a Buffer is a Uint8Array). */
export type ImageSource = string | Uint8Array;

export interface ReadImageOptions {
  /** Channel order of the result: 'bgr' (OpenCV's `imread`, what pipelines use) or 'rgb' (for display). */
  order: 'bgr' | 'rgb';
  /** How errors name an in-memory image (default: "N bytes of image data"); files are named by their path. */
  name?: string;
}

interface SourceBytes {
  bytes: Buffer;
  /** The file path, or the caller's name for in-memory bytes. */
  label: string;
}

function sourceBytes(source: ImageSource, name: string | undefined): SourceBytes {
  if (typeof source !== 'string') {
    // A view on the same memory: sharp wants a Buffer, the bytes are only read.
    const bytes = Buffer.isBuffer(source) ? source : Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    return { bytes, label: name ?? `${source.byteLength} bytes of image data` };
  }
  try {
    return { bytes: fs.readFileSync(source), label: source };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SegkitError(`cannot read ${source}${code === 'ENOENT' ? ' (file not found)' : `: ${(error as Error).message}`}`);
  }
}

async function decodeWithSharp(bytes: Buffer, purpose: string): Promise<SharpRawResult> {
  return loadSharp(purpose)(bytes).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
}

/**
 * Decodes an image (any format sharp reads: PNG, JPEG, TIFF, GIF's first frame, WebP, ...) to [H, W, 3] uint8
 * in the requested channel order. Like OpenCV's `IMREAD_COLOR`, a grey image (with or without alpha) is
 * replicated to three channels and an alpha channel is dropped; 16-bit samples are reduced to 8 bits.
 */
export async function readImage(source: ImageSource, options: ReadImageOptions): Promise<NdArray<Uint8Array>> {
  if (options.order !== 'bgr' && options.order !== 'rgb') throw new SegkitError(`readImage: expected order 'bgr' or 'rgb', got ${JSON.stringify(options.order)}`);
  const { bytes, label } = sourceBytes(source, options.name);
  let decoded: SharpRawResult;
  try {
    decoded = await decodeWithSharp(bytes, `decoding ${label}`);
  } catch (error) {
    if (error instanceof SegkitError) throw error;
    throw new SegkitError(`cannot decode ${label}: ${(error as Error).message}`);
  }
  const { width, height, channels } = decoded.info;
  const src = decoded.data;
  const out = new Uint8Array(width * height * 3);
  // Output channel k takes source channel first[k]: RGB keeps the order, BGR swaps red and blue.
  const [first, second, third]: readonly [number, number, number] = options.order === 'rgb' ? [0, 1, 2] : [2, 1, 0];
  for (let p = 0, q = 0; p < width * height; p++, q += channels) {
    if (channels < 3) {
      out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = src[q]!;
    } else {
      out[p * 3] = src[q + first]!;
      out[p * 3 + 1] = src[q + second]!;
      out[p * 3 + 2] = src[q + third]!;
    }
  }
  return { data: out, shape: [height, width, 3] };
}

/** Spreads 1/2/4-bit packed PNG samples (rows byte-aligned, most significant bits first) to one byte each. */
function unpackBits(packed: ArrayLike<number>, width: number, height: number, depth: number): Uint8Array {
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
 * A colour image is accepted only when its channels are equal (a grey map saved as RGB). Non-PNG formats
 * are decoded with sharp (8 bits per sample).
 */
export async function readLabelMap(source: ImageSource, options: { name?: string } = {}): Promise<NdArray<Uint8Array>> {
  const { bytes, label } = sourceBytes(source, options.name);
  const isPng = bytes.length > 8 && bytes.readUInt32BE(0) === 0x89504e47;
  let width: number, height: number, channels: number, values: ArrayLike<number>;
  try {
    if (isPng) {
      // fast-png, not sharp: sharp expands a palette to its colours, and the label is the index.
      const png = loadFastPng(`reading label map ${label}`).decode(bytes);
      ({ width, height, channels } = png);
      values = png.depth < 8 ? unpackBits(png.data, width, height, png.depth) : png.data;
    } else {
      const decoded = await decodeWithSharp(bytes, `reading label map ${label}`);
      ({ width, height, channels } = decoded.info);
      values = decoded.data;
    }
  } catch (error) {
    if (error instanceof SegkitError) throw error;
    throw new SegkitError(`cannot decode label map ${label}: ${(error as Error).message}`);
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
        throw new SegkitError(
          `${label} is a colour image (pixel ${p % width},${Math.floor(p / width)} has different channel values); expected a single-channel or palette PNG of class indices`,
        );
      }
    }
    out[p] = v & 0xff;
  }
  return { data: out, shape: [height, width] };
}

/** The PNG bytes of `array`; `label` names it in errors. */
function encodeNamed(array: NdArray<Uint8Array | Int32Array>, label: string): Uint8Array {
  const [height, width, channels = 1] = array.shape;
  if (array.shape.length < 2 || array.shape.length > 3 || (channels !== 1 && channels !== 3)) {
    throw new SegkitError(`${label}: expected an image of shape [H, W, 3] or a label map of shape [H, W], got [${array.shape.join(', ')}]`);
  }
  if (array.data.length !== height! * width! * channels) {
    throw new SegkitError(`${label}: shape [${array.shape.join(', ')}] needs ${height! * width! * channels} values, got ${array.data.length}`);
  }
  let data: Uint8Array;
  if (array.data instanceof Uint8Array) {
    data = array.data;
  } else {
    const outOfRange = array.data.find((v) => v < 0 || v > 255);
    if (outOfRange !== undefined) throw new SegkitError(`${label}: an 8-bit PNG holds values 0..255, got ${outOfRange}`);
    data = Uint8Array.from(array.data);
  }
  return loadFastPng(`PNG output (${label})`).encode({ width: width!, height: height!, data, channels, depth: 8 });
}

/**
 * An 8-bit PNG of `array`: RGB for [H, W, 3]; grayscale for [H, W] or [H, W, 1] (label maps, whose values are
 * the class indices 0..255, as MMSegmentation's `format_results` writes them). Pure JavaScript (fast-png).
 */
export function encodePng(array: NdArray<Uint8Array | Int32Array>): Uint8Array {
  return encodeNamed(array, 'encodePng');
}

/** Writes `array` as an 8-bit PNG (see `encodePng`), creating the folder; atomic, so readers never see half a file. */
export function writePng(file: string, array: NdArray<Uint8Array | Int32Array>): void {
  const png = encodeNamed(array, file);
  writeFileAtomic(file, (fd) => {
    for (let written = 0; written < png.length; ) written += fs.writeSync(fd, png, written, png.length - written);
  });
}

/** Renders an SVG document to PNG bytes with sharp (for `segkit plot --out x.png`). */
export async function svgToPng(svg: string): Promise<Buffer> {
  return loadSharp('PNG output of a plot (use .svg to do without it)')(Buffer.from(svg)).png().toBuffer();
}
