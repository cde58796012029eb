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
   * MMSegmentation 0.x does. Default `DEFAULT_SLIDE_BATCH_SIZE`.
   */
  batchSize?: number;
}

/**
 * Windows per forward pass when `test_cfg.batch_size` is not set. Measured with bench/inference.js
 * (UNet-S5-D16 base 64, 182 windows of 64², native backend): see the CHANGELOG / README for the figures.
 */
export const DEFAULT_SLIDE_BATCH_SIZE = 1;

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
 * them stacked along the batch axis per call, sums the logits into place in window order and divides
 * by how many windows cover each pixel. Every window of an image has the same size (the crop, or the
 * image's size along an axis where the image is smaller; `slideWindows` shifts border windows back
 * inside), so any run of windows stacks.
 */
export function slideInference(
  images: tf.Tensor4D,
  crop: readonly [number, number],
  stride: readonly [number, number],
  encodeDecode: (crops: tf.Tensor4D) => tf.Tensor4D,
  options: SlideInferenceOptions = {},
): tf.Tensor4D {
  const batchSize = checkSlideBatchSize(options.batchSize ?? DEFAULT_SLIDE_BATCH_SIZE);
  const [n, height, width, channels] = images.shape;
  const windows = slideWindows(height, width, crop, stride);
  const counts = new Float32Array(height * width);
  let sum: tf.Tensor4D | null = null;
  for (let start = 0; start < windows.length; start += batchSize) {
    const batch = windows.slice(start, start + batchSize);
    // Window k's images are rows k·n .. k·n + n − 1 of the stacked batch.
    const logits = tf.tidy(() => {
      const crops = batch.map(({ y1, y2, x1, x2 }) => tf.slice(images, [0, y1, x1, 0], [n, y2 - y1, x2 - x1, channels]));
      return encodeDecode(crops.length === 1 ? crops[0] : tf.concat(crops, 0));
    });
    for (const [k, { y1, y2, x1, x2 }] of batch.entries()) {
      for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) counts[y * width + x] += 1;
      const next: tf.Tensor4D = tf.tidy(() => {
        const windowLogits = batch.length === 1 ? logits : tf.slice(logits, [k * n, 0, 0, 0], [n, -1, -1, -1]);
        const placed = tf.pad(windowLogits, [[0, 0], [y1, height - y2], [x1, width - x2], [0, 0]]);
        return sum ? tf.add(sum, placed) : placed;
      });
      sum?.dispose();
      sum = next;
    }
    logits.dispose();
  }
  const total = sum!;
  const averaged = tf.tidy(() => tf.div(total, tf.tensor4d(counts, [1, height, width, 1])) as tf.Tensor4D);
  total.dispose();
  return averaged;
}
