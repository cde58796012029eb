import { SegkitError } from '../errors';
import type { SegmentorHandle } from '../apis/segmentor';
import { exportOnnx } from './onnx';
import { exportTfjs } from './tfjs';

export { testPipelineNormalization } from './normalization';

export interface ExportOptions {
  inputSize?: [number, number];
  output: 'logits' | 'labels';
  bakeNormalization: boolean;
}

export interface ExportReport {
  files: string[];
  inputSize?: [number, number];
  output: 'logits' | 'labels';
}

export type Exporter = (handle: SegmentorHandle, outPath: string, options: ExportOptions) => Promise<ExportReport>;

/** Every export format by name: the one place `segkit export --format` and `exportSegmentor` dispatch through. */
export const EXPORTERS: Readonly<Record<string, Exporter>> = {
  onnx: exportOnnx,
  tfjs: exportTfjs,
};

export function exportFormats(): string[] {
  return Object.keys(EXPORTERS);
}

/** Exports a loaded model (see `initSegmentor`) in `format` to `outPath`. */
export async function exportSegmentor(format: string, handle: SegmentorHandle, outPath: string, options: ExportOptions): Promise<ExportReport> {
  const exporter = Object.hasOwn(EXPORTERS, format) ? EXPORTERS[format] : undefined;
  if (!exporter) throw new SegkitError(`--format: unknown export format '${format}'; expected one of ${exportFormats().join(', ')}`);
  return exporter(handle, outPath, options);
}
