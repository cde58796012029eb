// The test pipeline over pixels already in memory and the prediction that follows, without Node: shared by
// `inferenceSegmentor` (Node) and a model exported to TF.js running in a browser (@segkit/web), so both
// see the same pre-processing and return the same label map.
import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import type { InferenceOptions, NdArray, PipelineResults, Segmentor } from '../components';
import type { RuntimeKernel } from '../plugin-system/runtime-kernel';
import { Compose } from '../data/compose';
import { SeededRandom } from '../data/random';
import { describeValue } from '../config/validation';
import { inferSample, type SampleOutputs, type SamplePrediction } from '../evaluation/evaluate';

/** RGB or RGBA pixels, row-major (a browser's `ImageData` is one). */
export interface PixelImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export type SegmentationOutputs = SampleOutputs;
export type PixelSegmentation = SamplePrediction;

/** RGB(A) pixels or an RGB tensor [H,W,3] as the BGR uint8 image `LoadImageFromFile` produces (OpenCV's order). */
export async function pixelsToBgr(image: PixelImage | tf.Tensor3D, what = 'the image'): Promise<NdArray<Uint8Array>> {
  let rgb: ArrayLike<number>;
  let height: number;
  let width: number;
  let channels: number;
  if (image instanceof tf.Tensor) {
    if (image.rank !== 3) throw new SegkitError(`${what}: expected a tensor [H,W,3], got shape [${image.shape.join(', ')}]`);
    [height, width, channels] = image.shape;
    rgb = (await image.data()) as Float32Array | Int32Array;
  } else {
    ({ height, width } = image);
    if (!image.data || !Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new SegkitError(`${what}: expected { data, width, height } with positive integer sizes, got width ${describeValue(width)} and height ${describeValue(height)}`);
    }
    rgb = image.data;
    channels = image.data.length / (width * height);
  }
  if (channels !== 3 && channels !== 4) throw new SegkitError(`${what}: expected an RGB or RGBA image, got ${channels} values per pixel for ${height}x${width}`);
  const bgr = new Uint8Array(height * width * 3);
  for (let p = 0; p < height * width; p++) {
    for (let c = 0; c < 3; c++) bgr[p * 3 + c] = Math.max(0, Math.min(255, Math.round(rgb[p * channels + 2 - c]!)));
  }
  return { data: bgr, shape: [height, width, 3] };
}

/** The test split's pipeline steps of a config (`data.test`, else `data.val`), with their config path. */
export function testPipelineSteps(config: Record<string, unknown>): { steps: unknown[]; path: string } {
  const data = config.data as Record<string, unknown> | undefined;
  if (!data || typeof data !== 'object') throw new SegkitError('data: missing from the config (expected a dict with a test pipeline)', 'data');
  const split = (data.test ?? data.val) as Record<string, unknown> | undefined;
  const configPath = data.test ? 'data.test' : 'data.val';
  if (!split || typeof split !== 'object') throw new SegkitError('data.test: the config has no test (or val) dataset', 'data.test');
  if (!Array.isArray(split.pipeline)) throw new SegkitError(`${configPath}.pipeline: inference runs the test pipeline; the config has none`, `${configPath}.pipeline`);
  return { steps: split.pipeline, path: `${configPath}.pipeline` };
}

/**
 * Runs a test pipeline on a BGR image in memory: the steps after `LoadImageFromFile` (MMSegmentation's
 * `LoadImage`), from the results dict that step would have made. `steps` may start with that step or not.
 */
export function runTestPipelineOnPixels(kernel: RuntimeKernel, pipeline: { steps: readonly unknown[]; path: string }, bgr: NdArray<Uint8Array>): Promise<PipelineResults> {
  const first = pipeline.steps[0] as { type?: unknown } | undefined;
  const offset = first?.type === 'LoadImageFromFile' ? 1 : 0;
  const steps = pipeline.steps.slice(offset).map((stepCfg, i) => {
    const type = (stepCfg as { type?: unknown } | undefined)?.type;
    if (type === 'LoadImageFromFile' || type === 'LoadAnnotations') {
      throw new SegkitError(`${pipeline.path}.${i + offset}: ${String(type)} reads files; an image in memory replaces only a first LoadImageFromFile step`);
    }
    return kernel.build('transforms', stepCfg, { path: `${pipeline.path}.${i + offset}` });
  });
  const shape = [...bgr.shape];
  return new Compose(steps).apply(
    { img: bgr, img_shape: shape, ori_shape: [...shape], pad_shape: [...shape], scale_factor: 1.0, img_norm_cfg: { mean: [0, 0, 0], std: [1, 1, 1], to_rgb: false }, seg_fields: [] },
    SeededRandom.fromSeed(0),
  );
}

/** Segments pixels in memory: the test pipeline, then the model's whole or slide inference at the original size. */
export async function segmentPixels(
  model: Segmentor,
  kernel: RuntimeKernel,
  pipeline: { steps: readonly unknown[]; path: string },
  testCfg: InferenceOptions,
  image: PixelImage | tf.Tensor3D,
  outputs: SegmentationOutputs = {},
): Promise<PixelSegmentation> {
  const sample = await runTestPipelineOnPixels(kernel, pipeline, await pixelsToBgr(image));
  return inferSample(model, sample, testCfg, outputs);
}
