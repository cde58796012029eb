import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import type { Reduction } from '../components';

/** `torch.finfo(torch.float32).eps` (2^-23): added to every `avg_factor` denominator, as in MMSegmentation. */
export const FLOAT32_EPS = 1.1920928955078125e-7;

/** The plain reduction of an element-wise loss. */
export function reduceLoss(loss: tf.Tensor, reduction: Reduction): tf.Tensor {
  if (reduction === 'none') return loss;
  return reduction === 'sum' ? tf.sum(loss) : tf.mean(loss);
}

/**
 * MMSegmentation's `weight_reduce_loss`: multiply by the element weight (same rank as the loss, each
 * dimension equal or 1), then reduce; with an `avgFactor`, 'mean' is `Σ / (avgFactor + ε)`, 'none' is
 * unchanged and 'sum' is an error.
 */
export function weightReduceLoss(loss: tf.Tensor, weight: tf.Tensor | null | undefined, reduction: Reduction, avgFactor?: number | null): tf.Tensor {
  return tf.tidy(() => {
    let weighted = loss;
    if (weight) {
      const broadcastable = weight.rank === loss.rank && weight.shape.every((size, axis) => size === 1 || size === loss.shape[axis]);
      if (!broadcastable) {
        throw new SegkitError(`loss: the weight of shape [${weight.shape.join(',')}] does not match the loss of shape [${loss.shape.join(',')}] (same rank, each dimension equal or 1)`);
      }
      weighted = tf.mul(loss, weight);
    }
    if (avgFactor === undefined || avgFactor === null) return reduceLoss(weighted, reduction);
    if (reduction === 'sum') throw new SegkitError("loss: avg_factor can not be used with reduction 'sum'");
    return reduction === 'mean' ? tf.div(tf.sum(weighted), avgFactor + FLOAT32_EPS) : weighted;
  });
}
