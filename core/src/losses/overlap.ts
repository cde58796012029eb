import * as tf from '@tensorflow/tfjs-core';

/**
 * Inputs of the 0.x region losses (DiceLoss, TverskyLoss): softmax probabilities [N,H,W,C], one-hot
 * targets of the labels clamped to [0, C−1] (so an ignored 255 becomes class C−1, as in 0.x), and
 * the valid mask [N,H,W,1] (labels != the loss's own ignore index).
 */
export function softmaxRegionInputs(logits: tf.Tensor, labels: tf.Tensor, ignoreIndex: number): { probs: tf.Tensor; target: tf.Tensor; valid: tf.Tensor } {
  return tf.tidy(() => {
    const numClasses = logits.shape[logits.rank - 1]!;
    const clamped = tf.clipByValue(tf.cast(labels, 'int32'), 0, numClasses - 1);
    return {
      probs: tf.softmax(logits),
      target: tf.cast(tf.oneHot(clamped, numClasses), 'float32'),
      valid: tf.expandDims(tf.cast(tf.notEqual(labels, ignoreIndex), 'float32'), -1),
    };
  });
}

/**
 * Combines per-image, per-class losses [N,C] the 0.x way: mean over images, × class_weight[c], skipping
 * the class whose index equals the ignore index, summed and divided by the full C.
 */
export function combineClassLosses(perImageClass: tf.Tensor, classWeight: readonly number[] | null, ignoreIndex: number): tf.Scalar {
  return tf.tidy(() => {
    const numClasses = perImageClass.shape[1]!;
    const keep = Array.from({ length: numClasses }, (_, c) => (c === ignoreIndex ? 0 : 1) * (classWeight ? classWeight[c]! : 1));
    return tf.div(tf.sum(tf.mul(tf.mean(perImageClass, 0), tf.tensor1d(keep))), numClasses) as tf.Scalar;
  });
}
