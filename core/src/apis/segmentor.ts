import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import { loadConfig, type LoadedConfig } from '../config/loader';
import { createKernel, type Kernel } from '../plugin-system/kernel';
import type { Logger } from '../plugin-system/registries';
import type { Dataset, EvaluationResult, InferenceOptions, Metric, NdArray, PipelineResults, Segmentor } from '../components';
import { readCheckpoint, type CheckpointMeta } from '../checkpoint/segkit-checkpoint';
import { evaluateSegmentor, inferSample, type SampleOutputs } from '../evaluation/evaluate';
import { seedEverything } from '../training/seed';
import { Compose } from '../data/compose';
import { SeededRandom } from '../data/random';
import { readImage } from '../io/image';
import { describeValue } from '../config/validation';
import { pixelsToBgr, runTestPipelineOnPixels, testPipelineSteps, type PixelImage } from './pixels';
import { defaultPalette, resolvePalette, type Rgb } from '../tools/palette';

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
  /** Class names: the checkpoint's `meta.CLASSES`, else the config's dataset; undefined when neither says. */
  readonly classes?: readonly string[];
  /** A colour per class (same sources, else generated colours). */
  readonly palette?: readonly Rgb[];
  /** The checkpoint's metadata (empty without a checkpoint). */
  readonly checkpointMeta?: CheckpointMeta;
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
  return modelAndMeta(kernel, config, checkpointFile).model;
}

function modelAndMeta(kernel: Kernel, config: LoadedConfig, checkpointFile?: string): { model: Segmentor; meta?: CheckpointMeta } {
  seedEverything(0);
  const model = kernel.build('segmentors', configSection(config, 'model'), { path: 'model' });
  if (!checkpointFile) return { model: model.eval() };
  const checkpoint = readCheckpoint(checkpointFile);
  try {
    model.loadStateDict(checkpoint.weights, { source: checkpointFile });
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    checkpoint.dispose();
  }
  return { model: model.eval(), meta: checkpoint.meta };
}

/**
 * MMSegmentation's `init_segmentor`: the config's model with a checkpoint's weights, ready for
 * `inferenceSegmentor`. Classes and palette come from the checkpoint (`meta.CLASSES`/`PALETTE`, written by
 * training), so no dataset folder is needed.
 */
export async function initSegmentor(config: ConfigSource, checkpoint?: string, options: InitOptions = {}): Promise<SegmentorHandle> {
  const loaded = typeof config === 'string' ? await loadConfig(config, options.cfgOptions ?? []) : config;
  const kernel = await kernelForConfig(loaded, options);
  const { model, meta } = modelAndMeta(kernel, loaded, checkpoint);
  const { classes, palette } = resolvePalette({ checkpointMeta: meta as Record<string, unknown> | undefined, config: loaded, numClasses: model.numClasses });
  return {
    model,
    config: loaded,
    kernel,
    testCfg: (configSection(loaded, 'model').test_cfg ?? {}) as InferenceOptions,
    classes,
    palette,
    checkpointMeta: meta ?? { iter: 0 },
    dispose: () => model.dispose(),
  };
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
export type ImageInput = string | Uint8Array | PixelImage | tf.Tensor3D;

/** What `inferenceSegmentor` returns besides the label map (both off by default: they are H·W·C floats). */
export type InferenceOutputs = SampleOutputs;

export interface InferenceResult {
  /** Label map at the image's size, [H,W] int32. */
  labels: NdArray<Int32Array>;
  /** Logits [H,W,C] at the image's size, when asked for (`{ logits: true }`). */
  logits?: NdArray<Float32Array>;
  /** Softmax probabilities [H,W,C] (sigmoid for one channel), when asked for (`{ probabilities: true }`). */
  probabilities?: NdArray<Float32Array>;
  /** A colour per class ([r, g, b]), for overlays. */
  palette: readonly Rgb[];
  /** Class names, when the checkpoint or config has them. */
  classes?: readonly string[];
}

/**
 * The test pipeline over one image (MMSegmentation's `inference_segmentor`): a file goes through the whole
 * pipeline; pixels in memory replace its LoadImageFromFile step (MMSegmentation's `LoadImage`).
 */
async function testPipelineResults(handle: SegmentorHandle, image: ImageInput): Promise<PipelineResults> {
  const pipeline = testPipelineSteps(handle.config);
  if (typeof image === 'string') {
    const steps = pipeline.steps.map((stepCfg, index) => handle.kernel.build('transforms', stepCfg, { path: `${pipeline.path}.${index}` }));
    return new Compose(steps).apply({ img_info: { filename: path.resolve(image) }, img_prefix: null, seg_fields: [] }, SeededRandom.fromSeed(0));
  }
  const first = pipeline.steps[0] as { type?: unknown } | undefined;
  if (first?.type !== 'LoadImageFromFile') throw new SegkitError(`${pipeline.path}.0: in-memory images replace a LoadImageFromFile step; the pipeline starts with ${describeValue(first?.type)}`);
  const bgr =
    image instanceof Uint8Array
      ? await readImage(image, { order: 'bgr', name: `the ${image.byteLength} bytes of image data given to inferenceSegmentor` })
      : await pixelsToBgr(image, 'inferenceSegmentor');
  return runTestPipelineOnPixels(handle.kernel, pipeline, bgr);
}

/**
 * MMSegmentation's `inference_segmentor`: the label map of one image at its original size, with the
 * palette and class names, and on request the logits and/or probabilities at that size.
 */
export async function inferenceSegmentor(handle: SegmentorHandle, image: ImageInput, outputs: InferenceOutputs = {}): Promise<InferenceResult> {
  if (typeof image === 'string' && !require('fs').existsSync(image)) throw new SegkitError(`infer: image not found: ${image}`);
  const sample = await testPipelineResults(handle, image);
  const prediction = await inferSample(handle.model, sample, handle.testCfg, outputs);
  return { ...prediction, palette: handle.palette ?? defaultPalette(handle.model.numClasses), ...(handle.classes ? { classes: handle.classes } : {}) };
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
