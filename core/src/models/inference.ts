import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import { describeValue } from '../config/validation';

export interface Window {
  y1: number;
  y2: number;
  x1: number;
  x2: number;
}

/**
 * MMSegmentation's sliding windows: `grids = max(size − crop + stride − 1, 0) // stride + 1` per
 * axis; window (i·sh, j·sw) is shifted back so it ends inside the image, and a window is smaller
 * than the crop only when the image is.
 */
export function slideWindows(height: number, width: number, crop: readonly [number, number], stride: readonly [number, number]): Window[] {
  const [cropH, cropW] = crop;
  const [strideH, strideW] = stride;
  if (![cropH, cropW, strideH, strideW].every((v) => Number.isInteger(v) && v > 0)) {
    throw new SegkitError(`test_cfg: crop_size and stride must be positive integers, got crop_size ${describeValue(crop)} and stride ${describeValue(stride)}`);
  }
  const gridsH = Math.floor(Math.max(height - cropH + strideH - 1, 0) / strideH) + 1;
  const gridsW = Math.floor(Math.max(width - cropW + strideW - 1, 0) / strideW) + 1;
  const windows: Window[] = [];
  for (let i = 0; i < gridsH; i++) {
    for (let j = 0; j < gridsW; j++) {
      const y2 = Math.min(i * strideH + cropH, height);
      const x2 = Math.min(j * strideW + cropW, width);
      windows.push({ y1: Math.max(y2 - cropH, 0), y2, x1: Math.max(x2 - cropW, 0), x2 });
    }
  }
  return windows;
}

/** Options of `slideInference`. */
export interface SlideInferenceOptions {
  /**
   * Windows per forward pass (`test_cfg.batch_size`): a positive integer; 1 runs them one at a time as
   * MMSegmentation 0.x does. Default: `defaultSlideBatchSize` of the window size.
   */
  batchSize?: number;
}

/**
 * Window pixels per forward pass when `test_cfg.batch_size` is not set: 16 windows of 64² (chosen with
 * bench/inference.js, UNet-S5-D16 base 64 on DRIVE's 584×565), 4 of 128², and one window of 256² or
 * more, as before batching existed, so a batch never holds more activations than one 256² window.
 */
export const SLIDE_BATCH_PIXELS = 256 * 256;

/** Windows per forward pass for windows of `size` when the config does not say: `SLIDE_BATCH_PIXELS` worth, at least 1. */
export function defaultSlideBatchSize(size: readonly [number, number]): number {
  return Math.max(1, Math.floor(SLIDE_BATCH_PIXELS / (size[0] * size[1])));
}

/** What `test_cfg.batch_size` must be (the config schema's and `slideInference`'s error say it alike). */
export const SLIDE_BATCH_SIZE_EXPECTED = 'expected a positive integer (windows per forward pass in slide inference)';

export function isSlideBatchSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/** `test_cfg.batch_size` (options passed at run time are not schema-checked): the value, or one error naming it. */
function checkSlideBatchSize(value: unknown): number {
  if (isSlideBatchSize(value)) return value;
  throw new SegkitError(`model.test_cfg.batch_size: ${SLIDE_BATCH_SIZE_EXPECTED}, got ${describeValue(value)}`, 'model.test_cfg.batch_size');
}

/**
 * Slide inference: runs `encodeDecode` (logits at the window's size) on the windows, `batchSize` of
 * them stacked along the batch axis per call, sums the logits into place and divides by how many
 * windows cover each pixel. Every window of an image has the same size (the crop, or the image's
 * size along an axis where the image is smaller; `slideWindows` shifts border windows back inside),
 * so any run of windows stacks. The sum goes through one strip per row of windows (the row's height,
 * the image's width), so each window costs a strip-sized add rather than an image-sized one.
 */
export function slideInference(
  images: tf.Tensor4D,
  crop: readonly [number, number],
  stride: readonly [number, number],
  encodeDecode: (crops: tf.Tensor4D) => tf.Tensor4D,
  options: SlideInferenceOptions = {},
): tf.Tensor4D {
  const [n, height, width, channels] = images.shape;
  const windows = slideWindows(height, width, crop, stride);
  const { y1, y2, x1, x2 } = windows[0]!;
  const batchSize = checkSlideBatchSize(options.batchSize ?? defaultSlideBatchSize([y2 - y1, x2 - x1]));
  const sum = new WindowSum(height, width);
  for (let start = 0; start < windows.length; start += batchSize) {
    const batch = windows.slice(start, start + batchSize);
    // Window k's images are rows k·n .. k·n + n − 1 of the stacked batch.
    const logits = tf.tidy(() => {
      const crops = batch.map(({ y1, y2, x1, x2 }) => tf.slice(images, [0, y1, x1, 0], [n, y2 - y1, x2 - x1, channels]));
      return encodeDecode(crops.length === 1 ? crops[0] : tf.concat(crops, 0));
    });
    for (const [k, window] of batch.entries()) {
      if (batch.length === 1) sum.add(window, logits);
      else tf.tidy(() => sum.add(window, tf.slice(logits, [k * n, 0, 0, 0], [n, -1, -1, -1])));
    }
    logits.dispose();
  }
  return sum.average();
}

/**
 * The running sum of slide-inference logits and the count of windows per pixel. Windows come row by
 * row (as `slideWindows` lists them); a row's logits are summed in a strip of the row's height and the
 * image's width, added into the image-sized sum when the next row starts, so each window costs a
 * strip-sized add rather than an image-sized one.
 */
class WindowSum {
  private readonly counts: Float32Array;
  private sum: tf.Tensor4D | null = null;
  private row: { y1: number; y2: number; logits: tf.Tensor4D } | null = null;

  constructor(private readonly height: number, private readonly width: number) {
    this.counts = new Float32Array(height * width);
  }

  /** Adds one window's logits [n, y2 − y1, x2 − x1, C] (kept by the caller). */
  add({ y1, y2, x1, x2 }: Window, logits: tf.Tensor4D): void {
    for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) this.counts[y * this.width + x] += 1;
    if (this.row && this.row.y1 !== y1) this.flushRow();
    const rowSoFar = this.row?.logits;
    const next = tf.keep(tf.tidy((): tf.Tensor4D => {
      const placed = tf.pad(logits, [[0, 0], [0, 0], [x1, this.width - x2], [0, 0]]);
      return rowSoFar ? tf.add(rowSoFar, placed) : placed;
    }));
    rowSoFar?.dispose();
    this.row = { y1, y2, logits: next };
  }

  /** The sum divided by the window count per pixel; disposes the running sums. */
  average(): tf.Tensor4D {
    this.flushRow();
    const total = this.sum!;
    this.sum = null;
    const averaged = tf.tidy(() => tf.div(total, tf.tensor4d(this.counts, [1, this.height, this.width, 1])) as tf.Tensor4D);
    total.dispose();
    return averaged;
  }

  private flushRow(): void {
    if (!this.row) return;
    const { y1, y2, logits } = this.row;
    const sum = this.sum;
    this.sum = tf.keep(tf.tidy((): tf.Tensor4D => {
      const placed = tf.pad(logits, [[0, 0], [y1, this.height - y2], [0, 0], [0, 0]]);
      return sum ? tf.add(sum, placed) : placed;
    }));
    sum?.dispose();
    logits.dispose();
    this.row = null;
  }
}
