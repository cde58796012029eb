import * as tf from '@tensorflow/tfjs-core';
import type { Dataset, EvaluationResult, InferenceOptions, Metric, NdArray, PipelineResults, Segmentor } from '../components';
import { MetricAccumulator, classTableRows, formatMetricTables } from './metrics';
import { SegkitError } from '../errors';
import { resize } from '../nn/resize';
import { SINGLE_PROCESS, broadcastJson, type Communicator } from '../distributed/communicator';
import type { AreaStats } from './metrics';

export interface EvaluateOptions {
  testCfg: InferenceOptions;
  /** Metric components (from the `metrics` registry) or the names of core's built-in ones. */
  metrics: readonly (Metric | string)[];
  nanToNum?: number;
  /** Called with each prediction at original size (for `--show-dir` overlays). */
  onPrediction?(index: number, prediction: NdArray<Int32Array>, sample: PipelineResults): void | Promise<void>;
  /** Called after each image with the count done and the dataset's length (progress bars). */
  onProgress?(done: number, total: number): void;
  /**
   * Data-parallel evaluation: rank r predicts images r, r + size, ...; the per-class areas are gathered
   * and summed (in float64, exact) and every rank returns the metrics of the whole dataset.
   */
  communicator?: Communicator;
}

type AreaStatsJson = Record<keyof AreaStats, number[]>;

/** Every rank's accumulated areas summed, on every rank. */
function combineAcrossRanks(group: Communicator, local: MetricAccumulator): MetricAccumulator {
  const totals = local.snapshot();
  const mine: AreaStatsJson = { intersect: Array.from(totals.intersect), union: Array.from(totals.union), pred: Array.from(totals.pred), label: Array.from(totals.label) };
  const gathered = group.gather(mine, 0);
  const summed = broadcastJson(group, gathered ? gathered.reduce((sum, stats) => {
    for (const key of Object.keys(sum) as (keyof AreaStats)[]) sum[key] = sum[key].map((value, c) => value + stats[key][c]!);
    return sum;
  }) : null);
  const combined = new MetricAccumulator(local.numClasses, local.ignoreIndex);
  combined.addStats({ intersect: Float64Array.from(summed!.intersect), union: Float64Array.from(summed!.union), pred: Float64Array.from(summed!.pred), label: Float64Array.from(summed!.label) });
  return combined;
}

/** The test pipeline's image: MultiScaleFlipAug may wrap single-scale results in lists. */
function firstAugmentation<T>(value: T | T[] | undefined): T | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** A shape entry of the results dict, or of its first augmentation when MultiScaleFlipAug made a list. */
function shapeOf(value: unknown): number[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return Array.isArray(value[0]) ? (value[0] as number[]) : (value as number[]);
}

/** Which per-pixel scores `inferSample` returns besides the label map. */
export interface SampleOutputs {
  /** The logits [H,W,C] at the original size (before the argmax). */
  logits?: boolean;
  /** Softmax over classes [H,W,C] (sigmoid for a single-channel head). */
  probabilities?: boolean;
  /** Run the network at this fixed [H, W] (the pipeline's image resized bilinearly, logits resized back); default its own size. */
  inputSize?: readonly [number, number];
}

export interface SamplePrediction {
  /** Label map [H,W] int32 at the original size. */
  labels: NdArray<Int32Array>;
  logits?: NdArray<Float32Array>;
  probabilities?: NdArray<Float32Array>;
}

/**
 * Predicts one test-pipeline sample at its original size, as MMSegmentation's `simple_test`:
 * inference at the pipeline's size, crop away padding (`img_shape`), resize to `ori_shape`, argmax;
 * with `outputs`, also the logits and/or probabilities at that size. Read back asynchronously.
 */
export async function inferSample(model: Segmentor, sample: PipelineResults, testCfg: InferenceOptions, outputs: SampleOutputs = {}): Promise<SamplePrediction> {
  const image = firstAugmentation(sample.img as NdArray | NdArray[]);
  if (!image || image.shape.length !== 3) throw new SegkitError('data.test.pipeline: expected an image [H,W,3] after the test pipeline (is Collect/ImageToTensor missing?)');
  const imgShape = shapeOf(sample.img_shape) ?? image.shape;
  const oriShape = shapeOf(sample.ori_shape) ?? imgShape;
  const tensors = tf.tidy(() => {
    const input = tf.tensor4d(image.data as Float32Array, [1, image.shape[0]!, image.shape[1]!, image.shape[2]!], 'float32');
    let logits: tf.Tensor4D;
    if (outputs.inputSize) {
      const fixed = resize(input, outputs.inputSize, { alignCorners: model.alignCorners });
      logits = resize(model.inference(fixed, testCfg), [input.shape[1], input.shape[2]], { alignCorners: model.alignCorners });
    } else logits = model.inference(input, testCfg);
    if (imgShape[0]! < logits.shape[1]! || imgShape[1]! < logits.shape[2]!) {
      logits = tf.slice(logits, [0, 0, 0, 0], [1, imgShape[0]!, imgShape[1]!, logits.shape[3]!]);
    }
    if (oriShape[0] !== logits.shape[1] || oriShape[1] !== logits.shape[2]) {
      logits = resize(logits, [oriShape[0]!, oriShape[1]!], { alignCorners: model.alignCorners }) as tf.Tensor4D;
    }
    const result: { labels: tf.Tensor; logits?: tf.Tensor; probabilities?: tf.Tensor } = { labels: model.labelsFromLogits(logits) };
    if (outputs.logits) result.logits = logits;
    if (outputs.probabilities) result.probabilities = logits.shape[3] === 1 ? tf.sigmoid(logits) : tf.softmax(logits, -1);
    return result;
  });
  try {
    const [height, width] = [oriShape[0]!, oriShape[1]!];
    const prediction: SamplePrediction = { labels: { data: Int32Array.from((await tensors.labels.data()) as Int32Array), shape: [height, width] } };
    for (const key of ['logits', 'probabilities'] as const) {
      const tensor = tensors[key];
      if (tensor) prediction[key] = { data: Float32Array.from((await tensor.data()) as Float32Array), shape: [height, width, tensor.shape[3]!] };
    }
    return prediction;
  } finally {
    tf.dispose([tensors.labels, tensors.logits, tensors.probabilities].filter((t): t is tf.Tensor => t !== undefined));
  }
}

/** The label map of one test-pipeline sample at its original size (`inferSample` without scores). */
export async function predictSample(model: Segmentor, sample: PipelineResults, testCfg: InferenceOptions): Promise<NdArray<Int32Array>> {
  return (await inferSample(model, sample, testCfg)).labels;
}

/** Runs the model over a dataset (batch 1, eval mode) and computes MMSegmentation's metrics. */
export async function evaluateSegmentor(model: Segmentor, dataset: Dataset, options: EvaluateOptions): Promise<EvaluationResult> {
  let accumulator = new MetricAccumulator(model.numClasses, dataset.ignoreIndex);
  const group = options.communicator ?? SINGLE_PROCESS;
  const wasTraining = model.training;
  model.eval();
  try {
    for (let index = group.rank; index < dataset.length; index += group.size) {
      const sample = await dataset.get(index);
      const prediction = await predictSample(model, sample, options.testCfg);
      const truth = await dataset.getGroundTruth(index);
      if (truth.shape[0] !== prediction.shape[0] || truth.shape[1] !== prediction.shape[1]) {
        throw new SegkitError(`evaluation: sample ${index} (${sample.filename ?? '?'}): prediction [${prediction.shape}] and ground truth [${truth.shape}] differ in size`);
      }
      accumulator.add(prediction.data, truth.data as Int32Array | Uint8Array);
      await options.onPrediction?.(index, prediction, sample);
      // With several ranks, the images every rank has done so far.
      options.onProgress?.(Math.min(dataset.length, index + group.size - group.rank), dataset.length);
    }
  } finally {
    model.train(wasTraining);
  }
  if (group.size > 1) accumulator = combineAcrossRanks(group, accumulator);
  const classNames = [...dataset.classes];
  const metrics = accumulator.compute(options.metrics, { classNames, nanToNum: options.nanToNum });
  const tables = formatMetricTables(metrics, classNames);
  return { metrics, classTable: classTableRows(metrics, classNames), text: `per class results:\n${tables.perClass}\nSummary:\n${tables.summary}` };
}
