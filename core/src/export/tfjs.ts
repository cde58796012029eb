// `segkit export --format tfjs`: the model's weights as a TF.js weights manifest with shards, and beside them
// what the browser runtime needs to rebuild and run it (model config, test pipeline, test_cfg, classes,
// palette, plugins). Read back with `segmentorFromTfjsArtifacts` (core/runtime) in Node or a browser.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { SegkitError, isSegkitError } from '../errors';
import type { SegmentorHandle } from '../apis/segmentor';
import type { Exporter } from './index';
import { testPipelineSteps } from '../apis/pixels';
import { configTypeRequirements } from '../plugin-system/config-types';
import { loadClassWeight } from '../losses/class-weight';
import { resolvePalette } from '../tools/palette';
import { writeFileAtomic } from '../checkpoint/atomic-file';
import { makeDirectory } from '../os-errors';
import { TFJS_FORMAT, type SegkitTfjsMetadata, type TfjsModelJson } from './tfjs-format';


/** tfjs-converter's shard size: browsers cache files of this size well. */
const SHARD_BYTES = 4 * 1024 * 1024;

type Dict = Record<string, unknown>;

function isDict(value: unknown): value is Dict {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The model config for inference: training-only parts dropped (auxiliary heads and pixel samplers, `train_cfg`,
 * `pretrained` and `init_cfg`, which only matter before weights are loaded) and `class_weight` files read into lists, so the
 * browser needs neither the files nor the sampler plugins.
 */
function inferenceModelConfig(model: Dict, configDir: string): Dict {
  const visit = (value: unknown, at: string): unknown => {
    if (Array.isArray(value)) return value.map((item, i) => visit(item, `${at}.${i}`));
    if (!isDict(value)) return value;
    const out: Dict = {};
    for (const [key, child] of Object.entries(value)) {
      if ((at === 'model' && key === 'auxiliary_head') || key === 'sampler' || key === 'train_cfg' || key === 'init_cfg' || key === 'pretrained') continue;
      if (key === 'class_weight' && typeof child === 'string') out[key] = loadClassWeight(child, { path: `${at}.class_weight`, configDir });
      else out[key] = visit(child, `${at}.${key}`);
    }
    return out;
  };
  return visit(model, 'model') as Dict;
}

/** The packages (other than core) that register the types the exported model and pipeline name. */
function requiredPlugins(handle: SegmentorHandle, model: Dict, pipeline: unknown[]): string[] {
  const names = new Set<string>();
  for (const { registry, type } of configTypeRequirements({ model, test_pipeline: pipeline })) {
    const entry = handle.kernel.registries[registry].describe().find((component) => component.type === type);
    if (entry && entry.plugin !== '@segkit/core') names.add(entry.plugin);
  }
  return [...names].sort();
}

/** Writes `model.json` and `group1-shard*of*.bin` into the folder `outPath` (created if needed). */
export const exportTfjs: Exporter = async (handle, outPath, options) => {
  if (!options.bakeNormalization) {
    throw new SegkitError("--no-bake-normalization: a TF.js export always carries the test pipeline with its Normalize step (the page runs it); it applies to ONNX only");
  }
  if (options.output !== 'logits' && options.output !== 'labels') throw new SegkitError(`--output: expected 'logits' or 'labels', got '${String(options.output)}'`);
  if (options.inputSize && !options.inputSize.every((v) => Number.isInteger(v) && v > 0)) {
    throw new SegkitError(`--input-size: expected two positive integers H,W, got ${options.inputSize.join(',')}`);
  }
  const config = handle.config as Dict & { filename?: string };
  const configDir = config.filename ? path.dirname(config.filename) : process.cwd();
  if (!isDict(config.model)) throw new SegkitError('model: missing from the config (expected a dict)', 'model');
  const model = inferenceModelConfig(config.model, configDir);
  const { steps, path: pipelinePath } = testPipelineSteps(config);
  const first = steps[0] as { type?: unknown } | undefined;
  const pipeline = first?.type === 'LoadImageFromFile' ? steps.slice(1) : steps;
  pipeline.forEach((step, i) => {
    const type = (step as { type?: unknown } | undefined)?.type;
    if (type === 'LoadImageFromFile' || type === 'LoadAnnotations') throw new SegkitError(`${pipelinePath}.${i}: ${String(type)} reads files; a TF.js export runs on pixels and takes only a first LoadImageFromFile step`);
  });
  const { classes, palette } = resolvePalette({
    checkpointMeta: handle.checkpointMeta as Dict | undefined,
    config,
    numClasses: handle.model.numClasses,
  });
  const metadata: SegkitTfjsMetadata = {
    segkitVersion: (require('../../../package.json') as { version: string }).version,
    model,
    testCfg: handle.testCfg,
    pipeline,
    ...(classes ? { classes } : {}),
    palette: palette.map((c) => [c[0], c[1], c[2]] as const),
    plugins: requiredPlugins(handle, model, pipeline),
    ...(options.inputSize ? { inputSize: options.inputSize } : {}),
    output: options.output,
  };

  // Auxiliary heads only add training losses; inference never runs them.
  const weights: tf.NamedTensorMap = Object.fromEntries([...handle.model.stateDict()].filter(([name]) => !name.startsWith('auxiliary_head.')));
  const { data, specs } = await tf.io.encodeWeights(weights);
  const bytes = new Uint8Array(data instanceof ArrayBuffer ? data : tf.io.concatenateArrayBuffers(data as ArrayBuffer[]));
  const shardCount = Math.max(1, Math.ceil(bytes.byteLength / SHARD_BYTES));
  const shardNames = Array.from({ length: shardCount }, (_, i) => `group1-shard${i + 1}of${shardCount}.bin`);
  const modelJson: TfjsModelJson = {
    format: TFJS_FORMAT,
    generatedBy: `segkit ${metadata.segkitVersion}`,
    convertedBy: 'segkit export --format tfjs',
    modelTopology: model,
    weightsManifest: [{ paths: shardNames, weights: specs }],
    userDefinedMetadata: { segkit: metadata },
  };
  makeDirectory(outPath, '--out');
  const files: string[] = [];
  for (let i = 0; i < shardCount; i++) {
    const file = path.join(outPath, shardNames[i]!);
    const shard = bytes.subarray(i * SHARD_BYTES, Math.min(bytes.byteLength, (i + 1) * SHARD_BYTES));
    writeFileAtomic(file, (fd) => fs.writeSync(fd, shard));
    files.push(file);
  }
  const modelFile = path.join(outPath, 'model.json');
  const text = `${JSON.stringify(modelJson, null, 1)}\n`;
  writeFileAtomic(modelFile, (fd) => fs.writeSync(fd, text));
  files.unshift(modelFile);
  return { files, ...(options.inputSize ? { inputSize: options.inputSize } : {}), output: options.output };
};

/** Model artifacts of a TF.js export on disk (`model.json` and its shards), for `segmentorFromTfjsArtifacts` in Node. */
export async function readTfjsExport(modelJsonFile: string): Promise<tf.io.ModelArtifacts> {
  let modelJson: tf.io.ModelJSON;
  try {
    modelJson = JSON.parse(fs.readFileSync(modelJsonFile, 'utf8')) as tf.io.ModelJSON;
  } catch (error) {
    const reason = isSegkitError(error) ? error.message : (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message;
    throw new SegkitError(`${modelJsonFile}: cannot read a TF.js model.json (${reason})`);
  }
  const dir = path.dirname(modelJsonFile);
  return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    const buffers = manifest.flatMap((group) =>
      group.paths.map((shard) => {
        const file = path.join(dir, shard);
        if (!fs.existsSync(file)) throw new SegkitError(`${modelJsonFile}: weight shard '${shard}' not found beside it`);
        const bytes = fs.readFileSync(file);
        return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      }),
    );
    return [tf.io.getWeightSpecs(manifest), tf.io.concatenateArrayBuffers(buffers)];
  });
}
