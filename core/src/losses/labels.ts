import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';

/** 1 where the label is not `ignoreIndex`, else 0 (float32, the labels' shape). */
export function validMask(labels: tf.Tensor, ignoreIndex: number): tf.Tensor {
  return tf.tidy(() => tf.cast(tf.notEqual(labels, ignoreIndex), 'float32'));
}

/** The labels with ignored pixels replaced by class 0 (int32), so they can index without going out of range. */
export function labelsWithIgnoredAsZero(labels: tf.Tensor, ignoreIndex: number): tf.Tensor {
  return tf.tidy(() => tf.where(tf.equal(labels, ignoreIndex), tf.zerosLike(labels), tf.cast(labels, 'int32')));
}

/**
 * Rejects with a clear error when a label that is not the ignore index lies outside `[0, numClasses)`
 * (PyTorch fails deep inside a kernel, or silently on some devices). `where` names the loss. The range
 * is computed on the device and read asynchronously (the only readback GPU backends allow), so it runs
 * before the forward pass (`Loss.checkLabels`), not inside the gradient tape.
 */
export async function checkLabelRange(labels: tf.Tensor, numClasses: number, ignoreIndex: number, where: string): Promise<void> {
  const range = tf.tidy(() => {
    const ignored = tf.equal(labels, ignoreIndex);
    const asInt = tf.cast(labels, 'int32');
    const counted = tf.where(ignored, tf.zerosLike(asInt), asInt);
    return tf.stack([tf.min(counted), tf.max(counted)]);
  });
  const [low, high] = Array.from(await range.data());
  range.dispose();
  const bad = low! < 0 ? low : high! >= numClasses ? high : undefined;
  if (bad !== undefined) {
    throw new SegkitError(
      `${where}: label ${bad} is outside [0, ${numClasses}) and is not the ignore index ${ignoreIndex}; check the dataset's label values (reduce_zero_label, classes) or the head's num_classes/ignore_index`,
    );
  }
}

/** Throws unless `logits` is `labels`' shape plus a trailing class axis ([N,H,W,C] against [N,H,W]). */
export function checkLogitsMatchLabels(logits: tf.Tensor, labels: tf.Tensor, where: string): void {
  const leading = logits.shape.slice(0, -1);
  if (logits.rank !== labels.rank + 1 || leading.some((size, axis) => size !== labels.shape[axis])) {
    throw new SegkitError(`${where}: expected logits [N,H,W,C] and labels [N,H,W] of the same size, got [${logits.shape.join(',')}] and [${labels.shape.join(',')}]`);
  }
}

/** One-hot float32 targets [..., C] of in-range int labels (use `labelsWithIgnoredAsZero` first). */
export function oneHotTargets(labels: tf.Tensor, numClasses: number): tf.Tensor {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.cast(labels, 'int32'), numClasses), 'float32'));
}
