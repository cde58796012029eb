import * as path from 'path';
import { SegkitError } from '../errors';
import type { Module } from '../nn/module';
import { readSafetensors, writeSafetensors } from './safetensors';
import { convertLayout, type WeightLayout } from './mapping';
import { readTorchCheckpoint, writeTorchCheckpoint } from './torch-format';
import type { TensorData } from './torch-tensors';

/** A checkpoint's weights and metadata, whatever its format. */
export interface CheckpointContents {
  file: string;
  format: 'pth' | 'safetensors';
  /** The weights by key, in `layout`. */
  tensors: Map<string, TensorData>;
  layout: WeightLayout;
  /** MMCV's `meta` of a .pth, or segkit's checkpoint meta of a .safetensors; null when there is none. */
  meta: Record<string, unknown> | null;
  /** What was left out, one line each (optimizer state, non-tensor entries). */
  notes: string[];
}

/** segkit's own safetensors keep optimizer slots under this prefix (engine/checkpoint.ts). */
const OPTIMIZER_PREFIX = '__optimizer__.';

/**
 * Reads a `.pth` (PyTorch layout) or a `.safetensors` file: segkit's own (`format: 'segkit'` metadata, HWIO)
 * or one in PyTorch's layout (Python's `safetensors.torch.save_file`, or segkit's `--layout torch`).
 */
export async function readCheckpointFile(file: string): Promise<CheckpointContents> {
  const extension = path.extname(file).toLowerCase();
  if (extension === '.safetensors') {
    const { tensors, metadata } = readSafetensors(file);
    const layout: WeightLayout = metadata.format === 'segkit' ? 'segkit' : 'torch';
    const notes: string[] = [];
    const weights = new Map<string, TensorData>();
    let optimizerTensors = 0;
    for (const [key, tensor] of tensors) {
      if (key.startsWith(OPTIMIZER_PREFIX)) optimizerTensors += 1;
      else weights.set(key, tensor);
    }
    if (optimizerTensors) notes.push(`optimizer state ignored (${optimizerTensors} tensors)`);
    let meta: Record<string, unknown> | null = null;
    if (metadata.meta) {
      try {
        meta = JSON.parse(metadata.meta) as Record<string, unknown>;
      } catch {
        throw new SegkitError(`${file}: checkpoint metadata is not valid JSON`);
      }
    }
    return { file, format: 'safetensors', tensors: weights, layout, meta, notes };
  }
  const checkpoint = await readTorchCheckpoint(file);
  return { file, format: 'pth', tensors: checkpoint.tensors, layout: 'torch', meta: checkpoint.meta, notes: checkpoint.notes };
}

/** A module's parameters and buffers on the host (segkit layout), read asynchronously. */
export async function moduleStateDict(module: Module): Promise<Map<string, TensorData>> {
  const result = new Map<string, TensorData>();
  for (const [key, variable] of module.stateDict()) {
    const dtype = variable.dtype === 'int32' ? 'int32' : 'float32';
    const values = await variable.data();
    const data = dtype === 'int32' ? Int32Array.from(values as ArrayLike<number>) : Float32Array.from(values as ArrayLike<number>);
    result.set(key, { dtype, shape: [...variable.shape], data });
  }
  return result;
}

/**
 * Saves a module as a `.pth` that `torch.load` reads and the MMSegmentation model of the same config loads
 * strictly: conv weights OIHW, int buffers int64, `{meta, state_dict}` as MMCV's save_checkpoint writes it.
 */
export async function saveTorchCheckpoint(file: string, module: Module, meta: Record<string, unknown> = {}): Promise<void> {
  const state = await moduleStateDict(module);
  writeTorchCheckpoint(file, convertLayout(state, 'segkit', 'torch'), { meta });
}

/**
 * safetensors in PyTorch's layout (conv weights OIHW) for Python's `safetensors.torch.load_file`; metadata
 * `format: 'pt'` as Hugging Face writes it. Integer buffers stay int32 (torch's load_state_dict casts them).
 */
export function writeTorchLayoutSafetensors(file: string, tensors: ReadonlyMap<string, TensorData>, layout: WeightLayout, metadata: Record<string, string> = {}): void {
  writeSafetensors(file, convertLayout(tensors, layout, 'torch'), { ...metadata, format: 'pt' });
}

export interface ConvertCheckpointOptions {
  /** Layout of a `.safetensors` destination: segkit's HWIO (default) or PyTorch's OIHW. A `.pth` is always PyTorch's. */
  layout?: WeightLayout;
  /** Merged into the destination's meta (e.g. CLASSES and PALETTE for MMSegmentation). */
  meta?: Record<string, unknown>;
}

/** What `segkit convert checkpoint SRC DST` does: `.pth` ⇄ `.safetensors`, either layout. Returns notes. */
export async function convertCheckpoint(source: string, destination: string, options: ConvertCheckpointOptions = {}): Promise<{ tensors: number; notes: string[] }> {
  const contents = await readCheckpointFile(source);
  const meta = { ...(contents.meta ?? {}), ...(options.meta ?? {}) };
  const extension = path.extname(destination).toLowerCase();
  if (extension === '.pth' || extension === '.pt') {
    writeTorchCheckpoint(destination, convertLayout(contents.tensors, contents.layout, 'torch'), { meta });
  } else if (extension === '.safetensors') {
    const layout = options.layout ?? 'segkit';
    const tensors = convertLayout(contents.tensors, contents.layout, layout);
    if (layout === 'torch') writeTorchLayoutSafetensors(destination, tensors, 'torch', { meta: JSON.stringify(meta) });
    else writeSafetensors(destination, tensors, { format: 'segkit', meta: JSON.stringify({ iter: 0, ...meta }) });
  } else {
    throw new SegkitError(`${destination}: expected a .pth or .safetensors destination`);
  }
  return { tensors: contents.tensors.size, notes: contents.notes };
}
