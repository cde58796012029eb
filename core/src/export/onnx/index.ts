import * as path from 'path';
import type { Exporter } from '../index';
import { testPipelineNormalization } from '../normalization';
import { makeDirectory, writeFileOrExplain } from '../../os-errors';
import { segmentorOnnxBytes } from './segmentor-graph';

export { buildOnnxModel, OnnxGraphBuilder, ONNX_OPSET, isStaticSize } from './graph';
export type { OnnxGraphInput, OnnxModelSpec } from './graph';
export { segmentorOnnxBytes } from './segmentor-graph';
export type { ImageNormalization, SegmentorOnnxOptions } from './segmentor-graph';
export { encodeOnnxModel, decodeOnnxModel } from './proto';
export type { OnnxInitializerBytes } from './proto';

/** `segkit export --format onnx`: the whole-image inference graph as one .onnx file (weights inside). */
export const exportOnnx: Exporter = async (handle, outPath, options) => {
  const normalization = options.bakeNormalization ? testPipelineNormalization(handle.config) : null;
  const { bytes } = await segmentorOnnxBytes(handle.model, {
    inputSize: options.inputSize,
    output: options.output,
    normalization,
    metadata: { 'segkit.test_cfg': JSON.stringify(handle.testCfg), 'segkit.align_corners': String(handle.model.alignCorners) },
    producerVersion: (require('../../../../package.json') as { version: string }).version,
  });
  makeDirectory(path.dirname(path.resolve(outPath)), '--out');
  writeFileOrExplain(outPath, bytes, '--out');
  return { files: [outPath], inputSize: options.inputSize, output: options.output };
};
