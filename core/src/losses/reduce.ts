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
 * unchanged and 'sum' is an error. A scalar tensor `avgFactor` (a count computed on the device) is never read back.
 */
export function weightReduceLoss(loss: tf.Tensor, weight: tf.Tensor | null | undefined, reduction: Reduction, avgFactor?: number | tf.Scalar | null): tf.Tensor {
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
    if (reduction !== 'mean') return weighted;
    const denominator = typeof avgFactor === 'number' ? avgFactor + FLOAT32_EPS : tf.add(avgFactor, FLOAT32_EPS);
    return tf.div(tf.sum(weighted), denominator);
  });
}

/**
 * At most this many tensors go into one `tf.addN`: WebGPU's default limit is 8 storage buffers per
 * shader stage (the inputs plus the output); over it Dawn rejects the shader and the op returns stale data.
 */
export const ADD_N_MAX_INPUTS = 7;

/** Σ of same-shape tensors (`tf.addN`) in chunks that stay within every backend's buffer limit. */
export function sumTensors(tensors: readonly tf.Tensor[]): tf.Tensor {
  if (tensors.length === 0) throw new SegkitError('sumTensors: expected at least one tensor');
  return tf.tidy(() => {
    let pending = [...tensors];
    while (pending.length > 1) {
      const next: tf.Tensor[] = [];
      for (let start = 0; start < pending.length; start += ADD_N_MAX_INPUTS) {
        const chunk = pending.slice(start, start + ADD_N_MAX_INPUTS);
        next.push(chunk.length === 1 ? chunk[0]! : tf.addN(chunk));
      }
      pending = next;
    }
    return tf.clone(pending[0]!);
  });
}
