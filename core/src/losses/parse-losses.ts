import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import { sumTensors } from './reduce';

export type LossDictValue = tf.Tensor | readonly tf.Tensor[];

export interface ParsedLosses {
  /** Σ of the entries whose key contains "loss": what is back-propagated. */
  loss: tf.Scalar;
  /** Every entry's value (mean, or sum of means for a list), in insertion order, then `loss` last (0.x). */
  logVars: Record<string, number>;
}

export interface ParsedLossTensors {
  /** Σ of the entries whose key contains "loss": what is back-propagated. */
  loss: tf.Scalar;
  /** Every entry's mean as a scalar tensor, in insertion order, then `loss` last; owned by the caller's tidy scope. */
  logTensors: Record<string, tf.Scalar>;
}

/**
 * MMSegmentation 0.x `_parse_losses` without reading anything back: a tensor entry counts as its mean, a
 * list of tensors as the sum of their means; `loss` sums the entries whose key contains the substring
 * "loss" (anywhere, so `decode.acc_seg` is logged only). The input tensors are not disposed.
 */
export function parseLossTensors(losses: Readonly<Record<string, unknown>>): ParsedLossTensors {
  const logTensors: Record<string, tf.Scalar> = {};
  for (const [name, value] of Object.entries(losses)) logTensors[name] = meanOf(name, value);
  const trained = Object.entries(logTensors).filter(([name]) => name.includes('loss')).map(([, mean]) => mean);
  const loss = trained.length === 0 ? tf.scalar(0) : trained.length === 1 ? trained[0]! : (sumTensors(trained) as tf.Scalar);
  logTensors.loss = loss;
  return { loss, logTensors };
}

/** Reads the log values of `parseLossTensors` with one asynchronous readback (GPU backends allow no other). */
export async function readLossValues(logTensors: Readonly<Record<string, tf.Scalar>>): Promise<Record<string, number>> {
  const keys = Object.keys(logTensors);
  const stacked = tf.stack(keys.map((key) => logTensors[key]!));
  const values = await stacked.data();
  stacked.dispose();
  return Object.fromEntries(keys.map((key, i) => [key, values[i]!]));
}

/** `parseLossTensors` with the values read back (one asynchronous readback): for scripts and tests. The caller owns `loss`. */
export async function parseLosses(losses: Readonly<Record<string, unknown>>): Promise<ParsedLosses> {
  const logTensors = tf.tidy(() => parseLossTensors(losses).logTensors);
  try {
    return { loss: tf.keep(logTensors.loss!), logVars: await readLossValues(logTensors) };
  } finally {
    // `loss` may also be a logged term (a single loss entry); only the other tensors are freed.
    tf.dispose(Object.values(logTensors).filter((tensor) => tensor !== logTensors.loss));
  }
}

function meanOf(name: string, value: unknown): tf.Scalar {
  if (isTensor(value)) return tf.mean(value);
  if (Array.isArray(value) && value.every(isTensor)) {
    const means = (value as tf.Tensor[]).map((item) => tf.mean(item));
    return means.length === 0 ? tf.scalar(0) : (sumTensors(means) as tf.Scalar);
  }
  throw new SegkitError(`parseLosses: ${name} is not a tensor or list of tensors, got ${value === null ? 'null' : typeof value}`);
}

/** Duck-typed, so a tensor from another copy of tfjs-core is still recognised. */
function isTensor(value: unknown): value is tf.Tensor {
  return typeof value === 'object' && value !== null && Array.isArray((value as tf.Tensor).shape) && typeof (value as tf.Tensor).data === 'function';
}
