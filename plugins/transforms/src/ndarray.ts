import { SegkitError, type NdArray } from '@segkit/core/runtime';

export type PixelArray = Uint8Array | Float32Array | Int32Array | Uint16Array;

/** A zero-filled typed array of the same kind as `like`. */
export function sameKind<T extends PixelArray>(like: T, length: number): T {
  return new (like.constructor as new (n: number) => T)(length);
}

export function channelsOf(array: NdArray): number {
  return array.shape.length > 2 ? array.shape[2]! : 1;
}

/** Rows y1..y2-1 and columns x1..x2-1 (clamped to the array, like numpy slicing). */
export function cropArray<T extends PixelArray>(array: NdArray<T>, y1: number, y2: number, x1: number, x2: number): NdArray<T> {
  const [height, width] = array.shape as [number, number];
  const c = channelsOf(array);
  const top = Math.max(0, Math.min(y1, height));
  const bottom = Math.max(top, Math.min(y2, height));
  const left = Math.max(0, Math.min(x1, width));
  const right = Math.max(left, Math.min(x2, width));
  const outWidth = right - left;
  const out = sameKind(array.data, (bottom - top) * outWidth * c);
  for (let y = top; y < bottom; y++) {
    out.set(array.data.subarray((y * width + left) * c, (y * width + right) * c), (y - top) * outWidth * c);
  }
  return { data: out, shape: array.shape.length > 2 ? [bottom - top, outWidth, c] : [bottom - top, outWidth] };
}

export function flipArray<T extends PixelArray>(array: NdArray<T>, direction: 'horizontal' | 'vertical'): NdArray<T> {
  const [height, width] = array.shape as [number, number];
  const c = channelsOf(array);
  const out = sameKind(array.data, array.data.length);
  for (let y = 0; y < height; y++) {
    const sourceRow = direction === 'vertical' ? height - 1 - y : y;
    for (let x = 0; x < width; x++) {
      const sourceCol = direction === 'horizontal' ? width - 1 - x : x;
      const from = (sourceRow * width + sourceCol) * c;
      const to = (y * width + x) * c;
      for (let k = 0; k < c; k++) out[to + k] = array.data[from + k]!;
    }
  }
  return { data: out, shape: [...array.shape] };
}

/** Pads at the bottom and right to height × width with `value` (mmcv.impad with padding_mode 'constant'). */
export function padArray<T extends PixelArray>(array: NdArray<T>, height: number, width: number, value: number, what: string): NdArray<T> {
  const [h, w] = array.shape as [number, number];
  if (height < h || width < w) {
    throw new SegkitError(`Pad: ${what} of size ${h}×${w} is larger than the pad size ${height}×${width} (pad only grows; crop or resize first)`);
  }
  const c = channelsOf(array);
  const out = sameKind(array.data, height * width * c);
  if (value !== 0) out.fill(value);
  for (let y = 0; y < h; y++) out.set(array.data.subarray(y * w * c, (y + 1) * w * c), y * width * c);
  return { data: out, shape: array.shape.length > 2 ? [height, width, c] : [height, width] };
}

/** Source index and weight of the right/lower neighbour for each output position (OpenCV's INTER_LINEAR mapping). */
function linearTaps(inSize: number, outSize: number): { index: Int32Array; weight: Float32Array } {
  const index = new Int32Array(outSize);
  const weight = new Float32Array(outSize);
  const scale = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    let f = (i + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    f -= s;
    if (s < 0) { f = 0; s = 0; }
    if (s >= inSize - 1) { f = 0; s = inSize - 1; }
    index[i] = s;
    weight[i] = f;
  }
  return { index, weight };
}

/**
 * OpenCV INTER_LINEAR (half-pixel centres, edge clamped), separable like OpenCV: each source row is
 * interpolated horizontally once and cached, then output rows blend two cached rows. Integer results
 * are rounded (a blend of in-range values stays in range).
 */
export function resizeBilinear<T extends PixelArray>(array: NdArray<T>, outHeight: number, outWidth: number): NdArray<T> {
  const [height, width] = array.shape as [number, number];
  const c = channelsOf(array);
  const src = array.data;
  const out = sameKind(src, outHeight * outWidth * c);
  const round = !(src instanceof Float32Array);
  const columns = linearTaps(width, outWidth);
  const rows = linearTaps(height, outHeight);
  const rowLength = outWidth * c;
  // Horizontal pass of one source row into `target` (float32).
  const horizontal = (sy: number, target: Float32Array) => {
    const base = sy * width * c;
    for (let x = 0; x < outWidth; x++) {
      const sx = columns.index[x]!;
      const w = columns.weight[x]!;
      const a = base + sx * c;
      const b = base + Math.min(sx + 1, width - 1) * c;
      for (let k = 0; k < c; k++) target[x * c + k] = src[a + k]! + (src[b + k]! - src[a + k]!) * w;
    }
  };
  let upper = new Float32Array(rowLength);
  let lower = new Float32Array(rowLength);
  let upperRow = -1;
  let lowerRow = -1;
  for (let y = 0; y < outHeight; y++) {
    const sy = rows.index[y]!;
    const sy1 = Math.min(sy + 1, height - 1);
    if (upperRow !== sy) {
      if (lowerRow === sy) {
        [upper, lower] = [lower, upper];
        [upperRow, lowerRow] = [lowerRow, upperRow];
      } else {
        horizontal(sy, upper);
        upperRow = sy;
      }
    }
    if (lowerRow !== sy1) {
      horizontal(sy1, lower);
      lowerRow = sy1;
    }
    const fy = rows.weight[y]!;
    const o = y * rowLength;
    if (round) {
      for (let i = 0; i < rowLength; i++) out[o + i] = Math.floor(upper[i]! + (lower[i]! - upper[i]!) * fy + 0.5);
    } else {
      for (let i = 0; i < rowLength; i++) out[o + i] = upper[i]! + (lower[i]! - upper[i]!) * fy;
    }
  }
  return { data: out, shape: array.shape.length > 2 ? [outHeight, outWidth, c] : [outHeight, outWidth] };
}

/** OpenCV INTER_NEAREST: source index floor(dst · src/dst) — what mmcv uses for label maps. */
export function resizeNearest<T extends PixelArray>(array: NdArray<T>, outHeight: number, outWidth: number): NdArray<T> {
  const [height, width] = array.shape as [number, number];
  const c = channelsOf(array);
  const out = sameKind(array.data, outHeight * outWidth * c);
  const columns = new Int32Array(outWidth);
  for (let x = 0; x < outWidth; x++) columns[x] = Math.min(Math.floor((x * width) / outWidth), width - 1);
  for (let y = 0; y < outHeight; y++) {
    const sy = Math.min(Math.floor((y * height) / outHeight), height - 1);
    for (let x = 0; x < outWidth; x++) {
      const from = (sy * width + columns[x]!) * c;
      const to = (y * outWidth + x) * c;
      for (let k = 0; k < c; k++) out[to + k] = array.data[from + k]!;
    }
  }
  return { data: out, shape: array.shape.length > 2 ? [outHeight, outWidth, c] : [outHeight, outWidth] };
}

/** Label arrays listed in `seg_fields` (MMSegmentation keeps every seg map in step with the image). */
export function segFields(results: Record<string, unknown>): string[] {
  return Array.isArray(results.seg_fields) ? (results.seg_fields as string[]) : [];
}

/** The pipeline's image, or a clear error naming the transform that needs it. */
export function requireImage(results: Record<string, unknown>, transform: string): NdArray {
  const img = results.img as NdArray | undefined;
  if (!img || !ArrayBuffer.isView(img.data)) throw new SegkitError(`${transform}: the results have no 'img'; put LoadImageFromFile first in the pipeline`);
  return img;
}
