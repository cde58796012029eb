import { SegkitError } from '../errors';
import type { LoadedConfig } from '../config/loader';
import { testDatasetConfig } from '../apis/segmentor';
import { describeValue } from '../config/validation';
import type { ImageNormalization } from './onnx/segmentor-graph';

/** Normalize's settings when the test pipeline has none: the model sees the loaded image as is (BGR, 0..255). */
const NO_NORMALIZATION: ImageNormalization = { mean: [0, 0, 0], std: [1, 1, 1], to_rgb: false };

/**
 * The test pipeline's Normalize step (searched through MultiScaleFlipAug's `transforms`), which a graph with
 * normalization baked in applies to RGB pixels. A pipeline without one normalizes nothing.
 */
export function testPipelineNormalization(config: LoadedConfig): ImageNormalization {
  let dataset: { cfg: Record<string, unknown>; path: string };
  try {
    dataset = testDatasetConfig(config);
  } catch (error) {
    if (!(error instanceof SegkitError)) throw error;
    throw new SegkitError(`${error.message}: normalization is baked into the export from the test pipeline's Normalize step; pass --no-normalization to export a graph that takes normalized input`, error.configPath);
  }
  const find = (steps: unknown, at: string): { step: Record<string, unknown>; path: string } | null => {
    if (!Array.isArray(steps)) return null;
    for (const [i, step] of steps.entries()) {
      if (!step || typeof step !== 'object') continue;
      const record = step as Record<string, unknown>;
      if (record.type === 'Normalize') return { step: record, path: `${at}.${i}` };
      const inner = find(record.transforms, `${at}.${i}.transforms`);
      if (inner) return inner;
    }
    return null;
  };
  const found = find(dataset.cfg.pipeline, `${dataset.path}.pipeline`);
  if (!found) return NO_NORMALIZATION;
  const triple = (key: 'mean' | 'std') => {
    const value = found.step[key];
    if (!Array.isArray(value) || value.length !== 3 || !value.every((v) => typeof v === 'number' && Number.isFinite(v)) || (key === 'std' && value.includes(0))) {
      throw new SegkitError(`${found.path}.${key}: expected three ${key === 'std' ? 'non-zero ' : ''}numbers, got ${describeValue(value)}`, `${found.path}.${key}`);
    }
    return value as unknown as [number, number, number];
  };
  return { mean: triple('mean'), std: triple('std'), to_rgb: found.step.to_rgb === undefined ? true : found.step.to_rgb === true };
}
