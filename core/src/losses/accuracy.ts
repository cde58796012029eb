import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import { FLOAT32_EPS } from './reduce';

export interface AccuracyOptions {
  /** k of top-k (default 1); a list returns one value per k. */
  topk?: number | readonly number[];
  /** Only predictions whose score is above `thresh` count as correct. */
  thresh?: number | null;
  /** Pixels with this label are left out of numerator and denominator. */
  ignoreIndex?: number | null;
}

/**
 * MMSegmentation's `accuracy`: top-k accuracy in **percent**, as a 1-element tensor. Classes are the
 * last axis of `pred` ([N,H,W,C] against [N,H,W], or [N,C] against [N]). ε is added to numerator and
 * denominator, so an all-ignored batch gives 100 and an empty batch 0.
 */
export function accuracy(pred: tf.Tensor, target: tf.Tensor, options?: AccuracyOptions & { topk?: number }): tf.Tensor1D;
export function accuracy(pred: tf.Tensor, target: tf.Tensor, options: AccuracyOptions & { topk: readonly number[] }): tf.Tensor1D[];
export function accuracy(pred: tf.Tensor, target: tf.Tensor, options: AccuracyOptions = {}): tf.Tensor1D | tf.Tensor1D[] {
  const topks = typeof options.topk === 'number' || options.topk === undefined ? [options.topk ?? 1] : [...options.topk];
  const single = typeof options.topk === 'number' || options.topk === undefined;
  const { thresh = null, ignoreIndex = null } = options;
  if (pred.shape[0] === 0) {
    const zeros = topks.map(() => tf.zeros([1]) as tf.Tensor1D);
    return single ? zeros[0]! : zeros;
  }
  if (pred.rank !== target.rank + 1 || pred.shape[0] !== target.shape[0]) {
    throw new SegkitError(`accuracy: expected predictions [..., C] with one more axis than the targets, got [${pred.shape.join(',')}] and [${target.shape.join(',')}]`);
  }
  const numClasses = pred.shape[pred.rank - 1]!;
  const maxk = Math.max(...topks);
  if (maxk > numClasses) throw new SegkitError(`accuracy: topk ${maxk} exceeds the number of classes ${numClasses}`);
  const results = tf.tidy(() => {
    const { values, indices } = tf.topk(pred, maxk);
    // correct[..., j] = the j-th best class equals the target (and its score passes thresh)
    let correct = tf.cast(tf.equal(indices, tf.expandDims(tf.cast(target, 'int32'), -1)), 'float32');
    if (thresh !== null) correct = tf.mul(correct, tf.cast(tf.greater(values, thresh), 'float32'));
    // The denominator stays on the device (no synchronous readback: GPU backends cannot do one).
    let total: tf.Scalar = tf.scalar(target.size);
    if (ignoreIndex !== null) {
      const keep = tf.cast(tf.notEqual(target, ignoreIndex), 'float32');
      correct = tf.mul(correct, tf.expandDims(keep, -1));
      total = tf.sum(keep);
    }
    const scale = tf.div(100, tf.add(total, FLOAT32_EPS));
    return topks.map((k) => {
      const correctK = tf.add(tf.sum(tf.slice(correct, new Array(correct.rank).fill(0), [...correct.shape.slice(0, -1), k])), FLOAT32_EPS);
      return tf.reshape(tf.mul(correctK, scale), [1]) as tf.Tensor1D;
    });
  });
  return single ? results[0]! : results;
}
