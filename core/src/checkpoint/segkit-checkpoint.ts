import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../nn/module';
import type { Optimizer, OptimizerState } from '../components';
import { SegkitError } from '../errors';
import { readSafetensors, writeSafetensors, type StoredTensor } from './safetensors';

const OPTIMIZER_PREFIX = '__optimizer__.';

/** Everything besides tensors that a checkpoint records (JSON in the safetensors metadata). */
export interface CheckpointMeta {
  /** Iterations finished when it was saved. */
  iter: number;
  config?: Record<string, unknown>;
  /** Optimizer hyper-state (type, step count, group lrs); its tensors are stored beside the weights. */
  optimizer?: Omit<OptimizerState, 'slots'>;
  /** Data loader position and seeds, so a resumed run sees the same data order. */
  dataLoader?: unknown;
  /** Best metric so far (CheckpointHook's save_best). */
  best?: { metric: string; value: number; iter: number };
  segkitVersion?: string;
  timestamp?: string;
  /** The training dataset's class names and colours (MMSegmentation's meta keys), for inference without the dataset. */
  CLASSES?: string[];
  PALETTE?: number[][];
  /** State that hooks keep across a resume (`Hook.beforeSaveCheckpoint`), by hook name. */
  hooks?: Record<string, unknown>;
}

/** A tensor's values, read asynchronously (GPU backends cannot read synchronously). */
async function store(tensor: tf.Tensor): Promise<StoredTensor> {
  const dtype = tensor.dtype === 'int32' ? 'int32' : 'float32';
  const values = await tensor.data();
  const data = dtype === 'int32' ? Int32Array.from(values as Int32Array) : Float32Array.from(values as Float32Array);
  return { dtype, shape: [...tensor.shape], data };
}

/** Saves model weights (by parameter/buffer name), the optimizer's slots and the metadata, atomically. */
export async function saveCheckpoint(file: string, model: Module, optimizer: Optimizer | undefined, meta: CheckpointMeta): Promise<void> {
  const tensors = new Map<string, StoredTensor>();
  for (const [name, variable] of model.stateDict()) tensors.set(name, await store(variable));
  let optimizerMeta: CheckpointMeta['optimizer'];
  if (optimizer) {
    const { slots, ...rest } = optimizer.stateDict();
    optimizerMeta = rest;
    for (const [param, slotMap] of Object.entries(slots)) {
      for (const [slot, tensor] of Object.entries(slotMap)) tensors.set(`${OPTIMIZER_PREFIX}${param}.${slot}`, await store(tensor));
      // stateDict() hands out copies; they are not needed once stored.
      tf.dispose(Object.values(slotMap));
    }
  }
  writeSafetensors(file, tensors, { format: 'segkit', meta: JSON.stringify({ ...meta, optimizer: optimizerMeta }) });
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  weights: Map<string, tf.Tensor>;
  optimizerState?: OptimizerState;
  dispose(): void;
}

/** The newest `iter_N.safetensors` in `dir` that reads back completely (other than `exclude`), or undefined. */
export function newestIntactCheckpoint(dir: string, exclude?: string): string | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const periodic = fs
    .readdirSync(dir)
    .map((name) => ({ name, iter: Number(/^iter_(\d+)\.safetensors$/.exec(name)?.[1] ?? NaN) }))
    .filter(({ iter }) => Number.isInteger(iter))
    .sort((a, b) => b.iter - a.iter);
  for (const { name } of periodic) {
    const file = path.join(dir, name);
    if (exclude && path.resolve(file) === path.resolve(exclude)) continue;
    try {
      readSafetensors(file);
      return file;
    } catch {
      // damaged too: try the next older one
    }
  }
  return undefined;
}

/**
 * Reads a checkpoint to resume from. A damaged or missing file is an error that names the newest intact
 * `iter_N` checkpoint beside it, so a run interrupted while writing `latest` can go on from there.
 */
export function readCheckpointForResume(file: string): LoadedCheckpoint {
  try {
    return readCheckpoint(file);
  } catch (error) {
    if (!(error instanceof SegkitError)) throw error;
    const intact = newestIntactCheckpoint(path.dirname(path.resolve(file)), file);
    throw new SegkitError(`--resume-from: ${error.message}${intact ? `; the newest intact checkpoint there is ${intact}: resume from it with --resume-from ${intact}` : ''}`);
  }
}

/** Reads a checkpoint into tensors (the caller disposes them with `dispose()`). */
export function readCheckpoint(file: string): LoadedCheckpoint {
  const { tensors, metadata } = readSafetensors(file);
  let meta: CheckpointMeta = { iter: 0 };
  if (metadata.meta) {
    try {
      meta = JSON.parse(metadata.meta) as CheckpointMeta;
    } catch {
      throw new SegkitError(`${file}: checkpoint metadata is not valid JSON`);
    }
  }
  const weights = new Map<string, tf.Tensor>();
  const slots: Record<string, Record<string, tf.Tensor>> = {};
  for (const [name, stored] of tensors) {
    const tensor = tf.tensor(stored.data, stored.shape, stored.dtype);
    if (name.startsWith(OPTIMIZER_PREFIX)) {
      const rest = name.slice(OPTIMIZER_PREFIX.length);
      const dot = rest.lastIndexOf('.');
      (slots[rest.slice(0, dot)] ??= {})[rest.slice(dot + 1)] = tensor;
    } else weights.set(name, tensor);
  }
  const optimizerState = meta.optimizer ? ({ ...meta.optimizer, slots } as OptimizerState) : undefined;
  return {
    meta,
    weights,
    optimizerState,
    dispose: () => {
      tf.dispose([...weights.values()]);
      for (const slotMap of Object.values(slots)) tf.dispose(Object.values(slotMap));
    },
  };
}
