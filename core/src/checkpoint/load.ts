import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import type { Module } from '../nn/module';
import type { Logger } from '../plugin-system/registries';
import { oihwToHwio, shapeInLayout, type WeightLayout } from './mapping';
import { formatTextTable } from '../tools/text-table';
import type { TensorData } from './torch-tensors';

export interface LoadStateDictOptions {
  /** Layout of `tensors`' 4-D weights: 'torch' (OIHW, from a .pth) or 'segkit' (HWIO). */
  layout: WeightLayout;
  /** Missing or unexpected keys are an error (MMCV's `strict`); default false. */
  strict?: boolean;
  /** The checkpoint, named in messages. */
  source: string;
  /** Receives the mismatch report as a warning (MMCV logs it the same way). */
  logger?: Logger;
}

export interface LoadStateDictReport {
  /** Model keys the checkpoint lacks (BatchNorm's `num_batches_tracked` left out, as MMCV does). */
  missingKeys: string[];
  /** Checkpoint keys the model lacks. */
  unexpectedKeys: string[];
  /** Keys copied into the model. */
  loadedKeys: string[];
  /** MMCV's "do not match exactly" message followed by a table of the keys; '' when everything matched. */
  message: string;
}

const formatShape = (shape: readonly number[] | undefined) => (shape ? `[${shape.join(',')}]` : '-');

/** MMCV's load_state_dict message, then one row per key: status, key, checkpoint shape, model shape. */
export function formatLoadReport(
  missing: readonly string[],
  unexpected: readonly string[],
  checkpointShapes: ReadonlyMap<string, readonly number[]>,
  modelShapes: ReadonlyMap<string, readonly number[]>,
): string {
  if (missing.length === 0 && unexpected.length === 0) return '';
  const lines = ['The model and loaded state dict do not match exactly', ''];
  if (unexpected.length) lines.push(`unexpected key in source state_dict: ${unexpected.join(', ')}`, '');
  if (missing.length) lines.push(`missing keys in source state_dict: ${missing.join(', ')}`, '');
  const rows = [
    ['status', 'key', 'checkpoint shape', 'model shape'],
    ...unexpected.map((key) => ['unexpected', key, formatShape(checkpointShapes.get(key)), '-']),
    ...missing.map((key) => ['missing', key, '-', formatShape(modelShapes.get(key))]),
  ];
  lines.push(formatTextTable(rows[0]!, rows.slice(1)));
  return lines.join('\n');
}

/**
 * Copies a state dict into a segkit module the way MMCV's `load_state_dict` does: keys present in both are
 * loaded, missing and unexpected keys are reported (a warning with a table, or an error when `strict`), and a
 * shape mismatch is always an error naming the key and both shapes (in the checkpoint's layout). PyTorch-layout
 * conv weights are transposed to HWIO on the way in. Nothing is assigned unless every check passes.
 */
export function loadStateDictIntoModule(module: Module, tensors: ReadonlyMap<string, TensorData>, options: LoadStateDictOptions): LoadStateDictReport {
  const own = module.stateDict();
  const mismatched: string[] = [];
  const loadedKeys: string[] = [];
  for (const [key, variable] of own) {
    const tensor = tensors.get(key);
    if (!tensor) continue;
    const incoming = shapeInLayout(tensor.shape, options.layout, 'segkit');
    if (incoming.length !== variable.shape.length || incoming.some((size, axis) => size !== variable.shape[axis])) {
      mismatched.push(`${key}: checkpoint ${formatShape(tensor.shape)}, model ${formatShape(shapeInLayout(variable.shape, 'segkit', options.layout))}`);
    } else loadedKeys.push(key);
  }
  if (mismatched.length) {
    const layoutNote = options.layout === 'torch' ? " (shapes in PyTorch's layout)" : '';
    throw new SegkitError(`${options.source}: shape mismatch${layoutNote} for ${mismatched.join('; ')}`);
  }
  const missingKeys = [...own.keys()].filter((key) => !tensors.has(key) && !key.endsWith('num_batches_tracked'));
  const unexpectedKeys = [...tensors.keys()].filter((key) => !own.has(key));
  const message = formatLoadReport(
    missingKeys,
    unexpectedKeys,
    new Map([...tensors].map(([key, tensor]) => [key, tensor.shape])),
    new Map([...own].map(([key, variable]) => [key, shapeInLayout(variable.shape, 'segkit', options.layout)])),
  );
  if (message && options.strict) throw new SegkitError(`${options.source}: ${message}`);
  for (const key of loadedKeys) {
    const variable = own.get(key)!;
    let tensor = tensors.get(key)!;
    if (options.layout === 'torch' && tensor.shape.length === 4) tensor = oihwToHwio(tensor);
    tf.tidy(() => {
      const value = tf.tensor(tensor.data, tensor.shape, tensor.dtype);
      variable.assign(value.dtype === variable.dtype ? value : tf.cast(value, variable.dtype));
    });
  }
  if (message) options.logger?.warn(`${options.source}: ${message}`);
  return { missingKeys, unexpectedKeys, loadedKeys, message };
}
