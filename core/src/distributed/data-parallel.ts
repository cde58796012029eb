import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../nn/module';
import type { Communicator } from './communicator';

/** PyTorch DDP's default bucket size (bucket_cap_mb = 25). */
export const DEFAULT_BUCKET_BYTES = 25 * 2 ** 20;

/** Consecutive runs of tensors whose float32 sizes add up to at most `bucketElements` (a larger tensor is a bucket of its own). */
export function bucketize(sizes: readonly number[], bucketElements: number): number[][] {
  const buckets: number[][] = [];
  let current: number[] = [];
  let filled = 0;
  sizes.forEach((size, index) => {
    if (current.length > 0 && filled + size > bucketElements) {
      buckets.push(current);
      current = [];
      filled = 0;
    }
    current.push(index);
    filled += size;
  });
  if (current.length > 0) buckets.push(current);
  return buckets;
}

/**
 * Bucket buffers kept from one iteration to the next (DDP keeps its buckets too): a fresh buffer per
 * bucket and iteration costs page faults in the packing and again inside MPI. Keyed by length.
 */
const bucketBuffers = new Map<number, Float32Array>();

function bucketBuffer(length: number): Float32Array {
  let buffer = bucketBuffers.get(length);
  if (!buffer) bucketBuffers.set(length, (buffer = new Float32Array(length)));
  return buffer;
}

/**
 * Runs `reduce` over the float32 tensors in buckets: their values are read (asynchronously), packed into
 * one buffer per bucket, reduced in place, and come back as new tensors (the inputs are not disposed).
 */
async function reduceInBuckets(tensors: readonly tf.Tensor[], bucketBytes: number, reduce: (buffer: Float32Array) => void): Promise<tf.Tensor[]> {
  const result: tf.Tensor[] = new Array(tensors.length);
  for (const bucket of bucketize(tensors.map((t) => t.size), Math.max(1, Math.floor(bucketBytes / 4)))) {
    const values = await Promise.all(bucket.map((i) => tensors[i]!.data()));
    const total = bucket.reduce((sum, i) => sum + tensors[i]!.size, 0);
    const buffer = bucketBuffer(total);
    let offset = 0;
    for (const data of values) {
      buffer.set(data as Float32Array, offset);
      offset += data.length;
    }
    reduce(buffer);
    offset = 0;
    for (const i of bucket) {
      const tensor = tensors[i]!;
      result[i] = tf.tensor(buffer.slice(offset, offset + tensor.size), tensor.shape, 'float32');
      offset += tensor.size;
    }
  }
  return result;
}

export interface GradientSyncResult {
  grads: tf.NamedTensorMap;
  /** Seconds spent in the collective itself (not packing). */
  allreduceSeconds: number;
}

/**
 * Averages gradients over every rank (DDP's bucketed allreduce): `order` fixes the order of the
 * tensors, identical on every rank. Returns new tensors; the given ones are disposed.
 */
export async function allreduceGradients(
  communicator: Communicator,
  grads: tf.NamedTensorMap,
  order: readonly string[],
  bucketBytes = DEFAULT_BUCKET_BYTES,
): Promise<GradientSyncResult> {
  const names = order.filter((name) => grads[name] !== undefined);
  let allreduceSeconds = 0;
  const reduced = await reduceInBuckets(
    names.map((name) => grads[name]!),
    bucketBytes,
    (buffer) => {
      const started = performance.now();
      communicator.allreduce(buffer, 'mean');
      allreduceSeconds += (performance.now() - started) / 1000;
    },
  );
  tf.dispose(Object.values(grads));
  return { grads: Object.fromEntries(names.map((name, i) => [name, reduced[i]!])), allreduceSeconds };
}

/**
 * Rank 0's parameters and buffers on every rank (DDP's initial broadcast), so every replica starts from
 * the same weights whatever each rank's initialisation or loaded checkpoint.
 */
export async function broadcastModel(communicator: Communicator, model: Module, bucketBytes = DEFAULT_BUCKET_BYTES): Promise<void> {
  if (communicator.size === 1) return;
  const entries = [...model.stateDict().entries()];
  const floats = entries.filter(([, variable]) => variable.dtype === 'float32');
  const replaced = await reduceInBuckets(
    floats.map(([, variable]) => variable),
    bucketBytes,
    (buffer) => communicator.broadcast(buffer, 0),
  );
  floats.forEach(([, variable], i) => {
    variable.assign(replaced[i]!);
    replaced[i]!.dispose();
  });
  for (const [, variable] of entries.filter(([, v]) => v.dtype === 'int32')) {
    const values = Int32Array.from((await variable.data()) as Int32Array);
    communicator.broadcast(new Uint8Array(values.buffer), 0);
    const received = tf.tensor(values, variable.shape, 'int32');
    variable.assign(received);
    received.dispose();
  }
}

/** In-place mean of named scalars over every rank (MMSegmentation's parse_losses all-reduces its log vars). */
export function averageScalars(communicator: Communicator, values: Record<string, number>): Record<string, number> {
  if (communicator.size === 1) return values;
  // Sorted, so that every rank packs the buffer alike; returned in the given order (the log's).
  const keys = Object.keys(values).sort();
  const buffer = Float32Array.from(keys.map((key) => values[key]!));
  communicator.allreduce(buffer, 'mean');
  const averaged = new Map(keys.map((key, i) => [key, buffer[i]!]));
  return Object.fromEntries(Object.keys(values).map((key) => [key, averaged.get(key)!]));
}
