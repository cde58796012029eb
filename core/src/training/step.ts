import * as tf from '@tensorflow/tfjs-core';
import type { Segmentor } from '../components';
import { parseLossTensors } from '../losses';

export interface ForwardBackward {
  /** The back-propagated loss (Σ of the terms whose key contains "loss"). */
  value: tf.Scalar;
  /** The gradient of `value` for each trainable parameter, keyed by `variable.name`. */
  grads: tf.NamedTensorMap;
  /** Every logged term as a scalar tensor, `loss` last (read them with `readLossValues`). */
  logTensors: Record<string, tf.Scalar>;
}

/**
 * The forward and backward half of a training iteration, exactly as the runner does it: `forwardTrain`,
 * MMSegmentation's `_parse_losses` and the gradients of every trainable parameter, with nothing read back.
 * The caller owns (and disposes) every returned tensor.
 */
export function forwardBackward(model: Segmentor, images: tf.Tensor4D, labels: tf.Tensor3D): ForwardBackward {
  let logTensors: Record<string, tf.Scalar> = {};
  const trainable = model.parameters().filter((variable) => variable.trainable);
  const { value, grads } = tf.variableGrads(() => {
    const parsed = parseLossTensors(model.forwardTrain(images, labels));
    logTensors = Object.fromEntries(Object.entries(parsed.logTensors).map(([key, tensor]) => [key, tf.keep(tf.clone(tensor))]));
    return parsed.loss;
  }, trainable);
  return { value, grads, logTensors };
}
