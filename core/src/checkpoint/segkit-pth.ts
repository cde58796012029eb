import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import type { Dataset, Optimizer, OptimizerState } from '../components';
import { SegkitError } from '../errors';
import type { Module } from '../nn/module';
import { moduleStateDict } from './checkpoint-file';
import { convertLayout } from './mapping';
import { readCheckpointForResume, type CheckpointMeta, type LoadedCheckpoint } from './segkit-checkpoint';
import { readTorchCheckpoint, readTorchCheckpointMeta, SEGKIT_OPTIMIZER_ENTRY, writeTorchCheckpoint } from './torch-format';
import type { TensorData } from './torch-tensors';

/** The checkpoint formats `checkpoint_config.format` offers. */
export type CheckpointFormat = 'safetensors' | 'pth';

/** The format a checkpoint file name implies: `.pth` / `.pt` are PyTorch's, anything else segkit's safetensors. */
export function checkpointFormatOf(file: string): CheckpointFormat {
  const extension = path.extname(file).toLowerCase();
  return extension === '.pth' || extension === '.pt' ? 'pth' : 'safetensors';
}

/** MMCV's `meta.CLASSES` and `meta.PALETTE` from a dataset, each left out when the dataset has none. */
export function datasetMeta(dataset: Pick<Dataset, 'classes' | 'palette'> | undefined): { CLASSES?: string[]; PALETTE?: number[][] } {
  const meta: { CLASSES?: string[]; PALETTE?: number[][] } = {};
  if (dataset?.classes?.length) meta.CLASSES = [...dataset.classes];
  if (dataset?.palette?.length) meta.PALETTE = dataset.palette.map((color) => [...color]);
  return meta;
}

/**
 * Saves a training checkpoint as a `.pth` that MMSegmentation loads like its own (`{meta, state_dict}`, conv
 * weights OIHW, int buffers int64, `meta.CLASSES`, `meta.PALETTE`, `meta.iter`) and that segkit resumes from
 * exactly: segkit's checkpoint meta (optimizer hyper-state, data order, hook state, ...) is a JSON string in
 * `meta.segkit`, and the optimizer's slots are a further top-level entry `segkit_optimizer` (`param.slot` →
 * tensor, PyTorch's layout), which MMCV ignores. Written atomically.
 */
export async function saveSegkitTorchCheckpoint(
  file: string,
  model: Module,
  optimizer: Optimizer | undefined,
  meta: CheckpointMeta,
  extraMeta: Record<string, unknown> = {},
): Promise<void> {
  const weights = await moduleStateDict(model);
  const slots = new Map<string, TensorData>();
  let optimizerMeta: CheckpointMeta['optimizer'];
  if (optimizer) {
    const { slots: slotTensors, ...rest } = optimizer.stateDict();
    optimizerMeta = rest;
    try {
      for (const [param, slotMap] of Object.entries(slotTensors)) {
        for (const [slot, tensor] of Object.entries(slotMap)) slots.set(`${param}.${slot}`, await hostTensor(tensor));
      }
    } finally {
      // stateDict() hands out copies; they are not needed once read.
      for (const slotMap of Object.values(slotTensors)) tf.dispose(Object.values(slotMap));
    }
  }
  const segkitMeta: CheckpointMeta = { ...meta, optimizer: optimizerMeta };
  writeTorchCheckpoint(file, convertLayout(weights, 'segkit', 'torch'), {
    meta: { ...extraMeta, iter: meta.iter, segkit: JSON.stringify(segkitMeta) },
    sections: optimizer ? { [SEGKIT_OPTIMIZER_ENTRY]: convertLayout(slots, 'segkit', 'torch') } : {},
  });
}

async function hostTensor(tensor: tf.Tensor): Promise<TensorData> {
  const dtype = tensor.dtype === 'int32' ? 'int32' : 'float32';
  const values = await tensor.data();
  const data = dtype === 'int32' ? Int32Array.from(values as Int32Array) : Float32Array.from(values as Float32Array);
  return { dtype, shape: [...tensor.shape], data };
}

/** segkit's checkpoint meta in a `.pth`'s `meta.segkit`, or null when the file was not written by segkit's runner. */
function segkitMetaOf(file: string, meta: Record<string, unknown> | null): CheckpointMeta | null {
  const text = meta?.segkit;
  if (typeof text !== 'string') return null;
  try {
    return JSON.parse(text) as CheckpointMeta;
  } catch {
    throw new SegkitError(`${file}: meta.segkit is not valid JSON`);
  }
}

/**
 * A `.pth` written by `saveSegkitTorchCheckpoint` as the runner resumes from it (weights and optimizer slots
 * back in segkit's layout, as tensors the caller disposes), or null when the file carries no segkit optimizer
 * state (a PyTorch / MMSegmentation checkpoint: only its weights can be used). Only the meta is read to decide.
 */
export async function readSegkitTorchCheckpoint(file: string): Promise<LoadedCheckpoint | null> {
  const meta = segkitMetaOf(file, await readTorchCheckpointMeta(file));
  if (!meta?.optimizer) return null;
  const checkpoint = await readTorchCheckpoint(file, { sections: [SEGKIT_OPTIMIZER_ENTRY] });
  const slotData = checkpoint.sections.get(SEGKIT_OPTIMIZER_ENTRY);
  if (!slotData) throw new SegkitError(`${file}: meta.segkit records an optimizer but the file has no '${SEGKIT_OPTIMIZER_ENTRY}' entry`);
  const weights = new Map<string, tf.Tensor>();
  const slots: Record<string, Record<string, tf.Tensor>> = {};
  for (const [name, tensor] of convertLayout(checkpoint.tensors, 'torch', 'segkit')) weights.set(name, tf.tensor(tensor.data, tensor.shape, tensor.dtype));
  for (const [name, tensor] of convertLayout(slotData, 'torch', 'segkit')) {
    const dot = name.lastIndexOf('.');
    (slots[name.slice(0, dot)] ??= {})[name.slice(dot + 1)] = tf.tensor(tensor.data, tensor.shape, tensor.dtype);
  }
  return {
    meta,
    weights,
    optimizerState: { ...meta.optimizer, slots } as OptimizerState,
    dispose: () => {
      tf.dispose([...weights.values()]);
      for (const slotMap of Object.values(slots)) tf.dispose(Object.values(slotMap));
    },
  };
}

/**
 * What `--resume-from` restores from: segkit's `.safetensors` (`readCheckpointForResume`), or a `.pth` segkit's
 * runner wrote (`checkpoint_config.format: 'pth'`). Null for anything that carries no segkit optimizer state —
 * another `.pth`, a model-zoo name or URL — whose weights only can be loaded. A damaged `.pth` is an error that
 * names the newest intact `iter_N.pth` beside it, as for safetensors.
 */
export async function readResumeCheckpoint(file: string): Promise<LoadedCheckpoint | null> {
  if (checkpointFormatOf(file) === 'safetensors') return file.toLowerCase().endsWith('.safetensors') ? readCheckpointForResume(file) : null;
  if (!fs.existsSync(file)) return null;
  try {
    return await readSegkitTorchCheckpoint(file);
  } catch (error) {
    if (!(error instanceof SegkitError)) throw error;
    const intact = await newestIntactTorchCheckpoint(path.dirname(path.resolve(file)), file);
    throw new SegkitError(`--resume-from: ${error.message}${intact ? `; the newest intact checkpoint there is ${intact}: resume from it with --resume-from ${intact}` : ''}`);
  }
}

/** The newest `iter_N.pth` in `dir` that reads back completely (other than `exclude`), or undefined. */
async function newestIntactTorchCheckpoint(dir: string, exclude: string): Promise<string | undefined> {
  const periodic = fs
    .readdirSync(dir)
    .map((name) => ({ name, iter: Number(/^iter_(\d+)\.pth$/.exec(name)?.[1] ?? NaN) }))
    .filter(({ iter }) => Number.isInteger(iter))
    .sort((a, b) => b.iter - a.iter);
  for (const { name } of periodic) {
    const candidate = path.join(dir, name);
    if (path.resolve(candidate) === path.resolve(exclude)) continue;
    try {
      await readTorchCheckpoint(candidate, { sections: [SEGKIT_OPTIMIZER_ENTRY] });
      return candidate;
    } catch {
      // damaged too: try the next older one
    }
  }
  return undefined;
}
