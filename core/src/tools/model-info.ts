import * as tf from '@tensorflow/tfjs-core';
import { formatTextTable } from './text-table';
import { Module, countFlops } from '../nn';

/** One top-level child of the model (backbone, decode_head, ...). */
export interface ModuleInfo {
  name: string;
  type: string;
  parameters: number;
  trainableParameters: number;
  tensors: number;
  /** Forward FLOPs of this part (0 for parts the dummy forward does not run, e.g. auxiliary heads). */
  flops: number;
}

export interface ModelInfoReport {
  type: string;
  /** (C, H, W), as MMSegmentation prints it. */
  inputShape: [number, number, number];
  parameters: number;
  trainableParameters: number;
  /** Number of parameter tensors. */
  tensors: number;
  /** Forward FLOPs at batch 1, MMCV's convention (1 multiply-add = 1 FLOP). */
  flops: number;
  modules: ModuleInfo[];
}

/**
 * Parameter counts and forward FLOPs of a model, like MMSegmentation's `tools/get_flops.py`: the
 * FLOPs of one dummy forward of batch 1 in eval mode (for a segmentor its `encodeDecode`, so
 * auxiliary heads do not count), counted analytically per layer without doing the arithmetic.
 */
export function describeModel(model: Module, inputShape: readonly [number, number], inChannels = 3): ModelInfoReport {
  const [height, width] = inputShape;
  const owner = new Map<Module, string>();
  for (const [name, child] of model.namedChildren()) for (const [, module] of child.namedModules()) owner.set(module, name);

  const wasTraining = model.training;
  model.eval();
  let flopsByPart = new Map<string, number>();
  let totalFlops = 0;
  try {
    const { counter } = countFlops(
      () =>
        tf.tidy(() => {
          const images = tf.zeros([1, height, width, inChannels]) as tf.Tensor4D;
          const runner = model as Module & { encodeDecode?: (x: tf.Tensor4D) => tf.Tensor };
          return runner.encodeDecode ? runner.encodeDecode(images) : (model.forward(images) as tf.Tensor);
        }).dispose(),
      { shapesOnly: true },
    );
    totalFlops = counter.total;
    flopsByPart = new Map();
    for (const [module, flops] of counter.byModule) {
      const part = owner.get(module) ?? '(root)';
      flopsByPart.set(part, (flopsByPart.get(part) ?? 0) + flops);
    }
  } finally {
    model.train(wasTraining);
  }

  const modules: ModuleInfo[] = model.namedChildren().map(([name, child]) => {
    const parameters = child.parameters();
    return {
      name,
      type: child.constructor.name,
      parameters: child.numParameters(),
      trainableParameters: child.numParameters(true),
      tensors: parameters.length,
      flops: flopsByPart.get(name) ?? 0,
    };
  });
  return {
    type: model.constructor.name,
    inputShape: [inChannels, height, width],
    parameters: model.numParameters(),
    trainableParameters: model.numParameters(true),
    tensors: model.parameters().length,
    flops: totalFlops,
    modules,
  };
}

const thousands = (value: number) => value.toLocaleString('en-US');
const gflops = (value: number) => `${(value / 1e9).toFixed(2)} GFLOPs`;

/** The report as text, in the spirit of MMSegmentation's get_flops output plus a per-part table. */
export function formatModelInfo(report: ModelInfoReport): string {
  const header = ['module', 'type', 'params', 'trainable', 'tensors', 'FLOPs'];
  const rows = report.modules.map((m) => [m.name, m.type, thousands(m.parameters), thousands(m.trainableParameters), String(m.tensors), gflops(m.flops)]);
  rows.push(['total', report.type, thousands(report.parameters), thousands(report.trainableParameters), String(report.tensors), gflops(report.flops)]);
  return [
    `Input shape: (${report.inputShape.join(', ')})`,
    `Flops: ${gflops(report.flops)}`,
    `Params: ${(report.parameters / 1e6).toFixed(2)} M (${thousands(report.parameters)} in ${report.tensors} tensors; ${thousands(report.trainableParameters)} trainable)`,
    '',
    formatTextTable(header, rows, [2, 3, 4, 5]),
  ].join('\n');
}

/**
 * The crop size a config trains with (its RandomCrop `crop_size`, also inside wrapped datasets),
 * else its slide-inference `test_cfg.crop_size`; undefined when it has neither.
 */
export function configCropSize(config: Record<string, unknown>): [number, number] | undefined {
  const findCrop = (value: unknown): [number, number] | undefined => {
    if (Array.isArray(value)) {
      for (const item of value) {
        const found = findCrop(item);
        if (found) return found;
      }
      return undefined;
    }
    if (value === null || typeof value !== 'object') return undefined;
    const record = value as Record<string, unknown>;
    if (record.type === 'RandomCrop' && isSize(record.crop_size)) return [record.crop_size[0], record.crop_size[1]];
    for (const key of ['pipeline', 'dataset', 'datasets']) {
      const found = findCrop(record[key]);
      if (found) return found;
    }
    return undefined;
  };
  const data = config.data as Record<string, unknown> | undefined;
  const train = findCrop(data?.train);
  if (train) return train;
  const testCfg = (config.model as Record<string, unknown> | undefined)?.test_cfg as Record<string, unknown> | undefined;
  return isSize(testCfg?.crop_size) ? [testCfg.crop_size[0], testCfg.crop_size[1]] : undefined;
}

function isSize(value: unknown): value is [number, number] {
  return Array.isArray(value) && value.length === 2 && value.every((v) => Number.isInteger(v) && v > 0);
}
