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

/**
 * Slide inference: runs `encodeDecode` (logits at the window's size) on every window, sums the
 * logits into place and divides by how many windows cover each pixel.
 */
export function slideInference(
  images: tf.Tensor4D,
  crop: readonly [number, number],
  stride: readonly [number, number],
  encodeDecode: (crop: tf.Tensor4D) => tf.Tensor4D,
): tf.Tensor4D {
  const [n, height, width] = images.shape;
  const windows = slideWindows(height, width, crop, stride);
  const counts = new Float32Array(height * width);
  let sum: tf.Tensor4D | null = null;
  for (const { y1, y2, x1, x2 } of windows) {
    for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) counts[y * width + x] += 1;
    const next: tf.Tensor4D = tf.tidy(() => {
      const window = tf.slice(images, [0, y1, x1, 0], [n, y2 - y1, x2 - x1, images.shape[3]]);
      const logits = encodeDecode(window);
      const placed = tf.pad(logits, [[0, 0], [y1, height - y2], [x1, width - x2], [0, 0]]);
      return sum ? tf.add(sum, placed) : placed;
    });
    sum?.dispose();
    sum = next;
  }
  const total = sum!;
  const averaged = tf.tidy(() => tf.div(total, tf.tensor4d(counts, [1, height, width, 1])) as tf.Tensor4D);
  total.dispose();
  return averaged;
}
