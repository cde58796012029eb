import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import { loadConfig, type LoadedConfig } from '../config/loader';
import { createKernel, type Kernel } from '../plugin-system/kernel';
import type { Logger } from '../plugin-system/registries';
import type { Dataset, EvaluationResult, InferenceOptions, Metric, NdArray, PipelineResults, Segmentor } from '../components';
import { readCheckpoint } from '../checkpoint/segkit-checkpoint';
import { evaluateSegmentor, predictSample } from '../evaluation/evaluate';
import { seedEverything } from '../training/seed';
import { Compose } from '../data/compose';
import { SeededRandom } from '../data/random';
import { readImage } from '../io/image';
import { describeValue } from '../config/validation';

/** A config file path, or a loaded config (with its folder for relative plugin paths). */
export type ConfigSource = string | LoadedConfig;

export interface InitOptions {
  /** 'auto' (default: the config's `backend`, else the fastest installed) or a backend name. */
  backend?: string;
  /** `--cfg-options` style overrides (`a.b=value`), applied when `config` is a path. */
  cfgOptions?: readonly string[];
  logger?: Logger;
}

/** A model ready for inference: built from its config, weights loaded, in eval mode (MMSegmentation's `init_segmentor`). */
export interface SegmentorHandle {
  readonly model: Segmentor;
  readonly config: LoadedConfig;
  readonly kernel: Kernel;
  /** The model's `test_cfg` (whole or slide inference). */
  readonly testCfg: InferenceOptions;
  /** Frees the model's weights. */
  dispose(): void;
}

/** A top-level dict of a config, or a clear error naming it. */
export function configSection(config: LoadedConfig, key: string): Record<string, unknown> {
  const value = config[key];
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new SegkitError(`${key}: missing from the config (expected a dict)`, key);
  return value as Record<string, unknown>;
}

/**
 * Loads a config file (with overrides) and a kernel with the plugins it lists, resolved from the config's
 * folder, plus the installed packages that declare the other types it names.
 */
export async function loadConfigAndKernel(
  file: string,
  options: { cfgOptions?: readonly string[]; backend?: string; logger?: Logger } = {},
): Promise<{ config: LoadedConfig; kernel: Kernel }> {
  const config = await loadConfig(file, options.cfgOptions ?? []);
  return { config, kernel: await kernelForConfig(config, options) };
}

async function kernelForConfig(config: LoadedConfig, options: { backend?: string; logger?: Logger }): Promise<Kernel> {
  const plugins = config.plugins ?? [];
  if (!Array.isArray(plugins) || plugins.some((p) => typeof p !== 'string')) {
    throw new SegkitError(`plugins: expected a list of package names or file paths, got ${describeValue(plugins)}`, 'plugins');
  }
  const kernel = await createKernel({
    plugins: plugins as string[],
    backend: options.backend ?? (config.backend as string | undefined) ?? 'auto',
    configDir: config.filename ? path.dirname(config.filename) : process.cwd(),
    logger: options.logger,
  });
  // Types the config names but its `plugins` do not register come from installed packages that declare them.
  await kernel.ensureProviders(config);
  return kernel;
}

/** Builds the config's model in eval mode; with a checkpoint, loads its weights strictly (every key must match). */
export function modelFromCheckpoint(kernel: Kernel, config: LoadedConfig, checkpointFile?: string): Segmentor {
  seedEverything(0);
  const model = kernel.build('segmentors', configSection(config, 'model'), { path: 'model' });
  if (checkpointFile) {
    const checkpoint = readCheckpoint(checkpointFile);
    try {
      model.loadStateDict(checkpoint.weights, { source: checkpointFile });
    } catch (error) {
      model.dispose();
      throw error;
    } finally {
      checkpoint.dispose();
    }
  }
  return model.eval();
}

/** MMSegmentation's `init_segmentor`: the config's model with a checkpoint's weights, ready for `inferenceSegmentor`. */
export async function initSegmentor(config: ConfigSource, checkpoint?: string, options: InitOptions = {}): Promise<SegmentorHandle> {
  const loaded = typeof config === 'string' ? await loadConfig(config, options.cfgOptions ?? []) : config;
  const kernel = await kernelForConfig(loaded, options);
  const model = modelFromCheckpoint(kernel, loaded, checkpoint);
  return { model, config: loaded, kernel, testCfg: (configSection(loaded, 'model').test_cfg ?? {}) as InferenceOptions, dispose: () => model.dispose() };
}

/** The test split's dataset config (MMSegmentation uses `data.test`, segkit falls back to `data.val`), with its config path. */
export function testDatasetConfig(config: LoadedConfig): { cfg: Record<string, unknown>; path: string } {
  const data = configSection(config, 'data');
  const cfg = (data.test ?? data.val) as Record<string, unknown> | undefined;
  if (!cfg || typeof cfg !== 'object') throw new SegkitError('data.test: the config has no test (or val) dataset', 'data.test');
  return { cfg, path: data.test ? 'data.test' : 'data.val' };
}

/**
 * An image for `inferenceSegmentor`: a file path, the bytes of an encoded image file (PNG, JPEG, ...; a Buffer
 * is a Uint8Array), RGB(A) pixels (`ImageData`-like), or a tensor [H,W,3] RGB.
 */
export type ImageInput = string | Uint8Array | { data: Uint8Array | Uint8ClampedArray; width: number; height: number } | tf.Tensor3D;

export interface InferenceResult {
  /** Label map at the image's size, [H,W] int32. */
  labels: NdArray<Int32Array>;
}

/** Encoded bytes, RGB(A) pixels or an RGB tensor as the BGR uint8 image `LoadImageFromFile` would have produced. */
async function toBgr(image: Exclude<ImageInput, string>): Promise<NdArray<Uint8Array>> {
  if (image instanceof Uint8Array) return readImage(image, { order: 'bgr', name: `the ${image.byteLength} bytes of image data given to inferenceSegmentor` });
  let rgb: Uint8Array | Uint8ClampedArray | Int32Array | Float32Array;
  let height: number;
  let width: number;
  let channels: number;
  if (image instanceof tf.Tensor) {
    [height, width, channels] = image.shape;
    rgb = (await image.data()) as Float32Array | Int32Array;
  } else {
    ({ height, width } = image);
    rgb = image.data;
    channels = image.data.length / (width * height);
  }
  if (channels !== 3 && channels !== 4) throw new SegkitError(`inferenceSegmentor: expected an RGB or RGBA image, got ${channels} channels for ${height}x${width}`);
  const bgr = new Uint8Array(height * width * 3);
  for (let p = 0; p < height * width; p++) {
    for (let c = 0; c < 3; c++) bgr[p * 3 + c] = Math.max(0, Math.min(255, Math.round(rgb[p * channels + 2 - c]!)));
  }
  return { data: bgr, shape: [height, width, 3] };
}

/**
 * The test pipeline over one image (MMSegmentation's `inference_segmentor`): a file goes through the whole
 * pipeline; pixels in memory replace its LoadImageFromFile step (MMSegmentation's `LoadImage`).
 */
async function testPipelineResults(handle: SegmentorHandle, image: ImageInput): Promise<PipelineResults> {
  const { cfg, path: configPath } = testDatasetConfig(handle.config);
  const steps = cfg.pipeline;
  if (!Array.isArray(steps)) throw new SegkitError(`${configPath}.pipeline: inference runs the test pipeline; the config has none`, `${configPath}.pipeline`);
  const build = (stepCfg: unknown, index: number) => handle.kernel.build('transforms', stepCfg, { path: `${configPath}.pipeline.${index}` });
  const random = SeededRandom.fromSeed(0);
  if (typeof image === 'string') {
    const pipeline = new Compose(steps.map(build));
    return pipeline.apply({ img_info: { filename: path.resolve(image) }, img_prefix: null, seg_fields: [] }, random);
  }
  const first = steps[0] as { type?: unknown } | undefined;
  if (first?.type !== 'LoadImageFromFile') throw new SegkitError(`${configPath}.pipeline.0: in-memory images replace a LoadImageFromFile step; the pipeline starts with ${describeValue(first?.type)}`);
  const img = await toBgr(image);
  const shape = [...img.shape];
  const pipeline = new Compose(steps.slice(1).map((stepCfg, i) => build(stepCfg, i + 1)));
  return pipeline.apply(
    { img, img_shape: shape, ori_shape: [...shape], pad_shape: [...shape], scale_factor: 1.0, img_norm_cfg: { mean: [0, 0, 0], std: [1, 1, 1], to_rgb: false }, seg_fields: [] },
    random,
  );
}

/** MMSegmentation's `inference_segmentor`: the label map of one image at its original size. */
export async function inferenceSegmentor(handle: SegmentorHandle, image: ImageInput): Promise<InferenceResult> {
  if (typeof image === 'string' && !require('fs').existsSync(image)) throw new SegkitError(`infer: image not found: ${image}`);
  const sample = await testPipelineResults(handle, image);
  return { labels: await predictSample(handle.model, sample, handle.testCfg) };
}

export interface TestOptions {
  /** Metric components or the names of core's built-in ones (default mIoU). */
  metrics?: readonly (Metric | string)[];
  /** Called with each prediction at original size (for `--show-dir` images). */
  onPrediction?(index: number, prediction: NdArray<Int32Array>, sample: PipelineResults, dataset: Dataset): void | Promise<void>;
}

/** MMSegmentation's `single_gpu_test` + `evaluate` over the config's test split. */
export async function testSegmentor(handle: SegmentorHandle, options: TestOptions = {}): Promise<EvaluationResult> {
  const { cfg, path: configPath } = testDatasetConfig(handle.config);
  const dataset = handle.kernel.build('datasets', cfg, { path: configPath });
  const metrics = (options.metrics ?? ['mIoU']).map((metric, i) => (typeof metric === 'string' ? handle.kernel.build('metrics', { type: metric }, { path: `--eval.${i}` }) : metric));
  return evaluateSegmentor(handle.model, dataset, {
    testCfg: handle.testCfg,
    metrics,
    onPrediction: options.onPrediction ? (index, prediction, sample) => options.onPrediction!(index, prediction, sample, dataset) : undefined,
  });
}
