// segkit's TF.js export format, the reading side (no Node): a `model.json` in TF.js's layout —
// `weightsManifest` (shards of little-endian float32/int32, as tfjs-converter writes them) that
// `tf.io.http(...).load()` or `tf.io.browserFiles` read — whose `modelTopology` is the segkit model config
// and whose `userDefinedMetadata.segkit` holds the test pipeline, test_cfg, classes and palette. The graph
// is rebuilt by segkit's own nn modules (a runtime kernel with the model's plugins), so whole and slide
// inference and the pre-processing are the very code Node runs.
import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import type { InferenceOptions, Segmentor } from '../components';
import type { RuntimeKernel } from '../plugin-system/runtime-kernel';
import { segmentPixels, type PixelImage, type PixelSegmentation, type SegmentationOutputs } from '../apis/pixels';
import { parsePalette, type Rgb } from '../tools/palette';

/** `model.json`'s `format` for a segkit segmentor. */
export const TFJS_FORMAT = 'segkit-segmentor';

/** `userDefinedMetadata.segkit`: everything besides the weights that inference needs. */
export interface SegkitTfjsMetadata {
  segkitVersion: string;
  /** The model config (the `model` section: EncoderDecoder, training-only parts such as samplers removed). */
  model: Record<string, unknown>;
  /** Whole or slide inference (the model's `test_cfg`). */
  testCfg: InferenceOptions;
  /** The test pipeline's steps after LoadImageFromFile (resize, normalize, ...), run on the pixels given. */
  pipeline: unknown[];
  classes?: string[];
  palette: Rgb[];
  /** Packages whose components the model and pipeline use (the browser bundle must pass their plugins). */
  plugins: string[];
  /** The fixed [H, W] the network runs at, when exported with one; otherwise any size. */
  inputSize?: [number, number];
  /** What `segment` returns by default besides labels: 'logits' adds the logits. */
  output: 'logits' | 'labels';
}

/** `model.json` as written by `exportTfjs` (TF.js's ModelJSON with segkit's topology and metadata). */
export interface TfjsModelJson {
  format: typeof TFJS_FORMAT;
  generatedBy: string;
  convertedBy: string;
  modelTopology: Record<string, unknown>;
  weightsManifest: tf.io.WeightsManifestConfig;
  userDefinedMetadata: { segkit: SegkitTfjsMetadata };
}

/** The segkit metadata of loaded TF.js model artifacts, or a clear error naming `source`. */
export function readTfjsModelJson(artifacts: tf.io.ModelArtifacts, source = 'model.json'): SegkitTfjsMetadata {
  if (artifacts.format !== TFJS_FORMAT) {
    throw new SegkitError(`${source}: not a segkit TF.js export (format is ${JSON.stringify(artifacts.format)}, expected '${TFJS_FORMAT}'; write one with \`segkit export CONFIG CHECKPOINT --format tfjs\`)`);
  }
  const meta = (artifacts.userDefinedMetadata as { segkit?: SegkitTfjsMetadata } | undefined)?.segkit;
  if (!meta || typeof meta !== 'object') throw new SegkitError(`${source}: userDefinedMetadata.segkit is missing`);
  if (!meta.model || typeof meta.model !== 'object') throw new SegkitError(`${source}: userDefinedMetadata.segkit.model: expected the model config`);
  if (!Array.isArray(meta.pipeline)) throw new SegkitError(`${source}: userDefinedMetadata.segkit.pipeline: expected the test pipeline's steps`);
  if (!Array.isArray(meta.plugins)) throw new SegkitError(`${source}: userDefinedMetadata.segkit.plugins: expected a list of package names`);
  parsePalette(meta.palette, `${source}: userDefinedMetadata.segkit.palette`);
  if (!artifacts.weightSpecs || !artifacts.weightData) throw new SegkitError(`${source}: the weights were not loaded (weightsManifest and its shards)`);
  return meta;
}

/** A segmentor rebuilt from a TF.js export, ready to segment pixels. */
export interface TfjsSegmentor {
  readonly model: Segmentor;
  readonly kernel: RuntimeKernel;
  readonly metadata: SegkitTfjsMetadata;
  /** Label map at the image's size (plus logits/probabilities on request; logits by default if exported with output 'logits'). */
  segment(image: PixelImage | tf.Tensor3D, outputs?: SegmentationOutputs): Promise<PixelSegmentation>;
  dispose(): void;
}

/**
 * Builds the exported model with `kernel` (which must have the plugins `metadata.plugins` names) and loads
 * its weights strictly. `source` names the model in errors.
 */
export function segmentorFromTfjsArtifacts(artifacts: tf.io.ModelArtifacts, kernel: RuntimeKernel, source = 'model.json'): TfjsSegmentor {
  const metadata = readTfjsModelJson(artifacts, source);
  const loaded = new Set(kernel.plugins.map((plugin) => plugin.name));
  const missing = metadata.plugins.filter((name) => !loaded.has(name));
  if (missing.length > 0) {
    throw new SegkitError(`${source}: the model needs the plugins ${missing.join(', ')}; import them and pass them in \`plugins\` (loaded: ${[...loaded].join(', ')})`);
  }
  const model = kernel.build('segmentors', metadata.model, { path: 'model' });
  const weights = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
  try {
    model.loadStateDict(weights, { source });
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    tf.dispose(Object.values(weights));
  }
  model.eval();
  const pipeline = { steps: metadata.pipeline, path: `${source}: pipeline` };
  return {
    model,
    kernel,
    metadata,
    segment: (image, outputs) =>
      segmentPixels(model, kernel, pipeline, metadata.testCfg, image, {
        logits: metadata.output === 'logits',
        ...(metadata.inputSize ? { inputSize: metadata.inputSize } : {}),
        ...outputs,
      }),
    dispose: () => model.dispose(),
  };
}
