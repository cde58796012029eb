/**
 * The interfaces of the component kinds that flow between plugins. A plugin implements them;
 * core (and other plugins) only ever talk to these.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Module } from './nn/module';
import type { EventBus } from './bus';
import type { AreaStats } from './evaluation/metrics';

// ---------------------------------------------------------------- losses and samplers

export type Reduction = 'none' | 'mean' | 'sum';

export interface LossCallOptions {
  /** Per-pixel weight [N,H,W] (e.g. the OHEM map). */
  weight?: tf.Tensor;
  /** The head's ignore index (the loss's own default when absent). */
  ignoreIndex?: number;
  avgFactor?: number;
  reductionOverride?: Reduction;
}

/** A loss module (`losses` registry): logits [N,H,W,C] float32, labels [N,H,W] int32. */
export interface Loss {
  /** Key the decode head stores the value under, e.g. 'loss_ce'. */
  readonly lossName: string;
  /** Whether a per-pixel `weight` changes the value (CE: yes; 0.x Dice/Lovasz/Tversky: no) — for the OHEM warning. */
  readonly usesPixelWeight: boolean;
  forward(logits: tf.Tensor, labels: tf.Tensor, options?: LossCallOptions): tf.Tensor;
  /**
   * Rejects when `labels` hold a value this loss cannot take from a head of `numChannels` outputs (other
   * than `ignoreIndex`). Awaited by the runner before the forward pass: `forward` runs inside the gradient
   * tape, where nothing can be read back asynchronously.
   */
  checkLabels?(labels: tf.Tensor, numChannels: number, ignoreIndex: number): Promise<void>;
}

/** What a decode head gives its sampler at sampling time (MMSegmentation's `context`). */
export interface SamplerContext {
  readonly ignoreIndex: number;
  readonly lossDecode: readonly Loss[];
}

/** A pixel sampler (`samplers` registry), e.g. OHEMPixelSampler. */
export interface PixelSampler {
  /** Returns a float32 [N,H,W] map of 0/1; runs without gradient. */
  sample(logits: tf.Tensor, labels: tf.Tensor, context: SamplerContext): tf.Tensor;
}

// ---------------------------------------------------------------- models

/** A decode or auxiliary head (`heads` registry). */
export interface DecodeHead extends Module {
  readonly numClasses: number;
  readonly outChannels: number;
  readonly alignCorners: boolean;
  readonly ignoreIndex: number;
  /** Probability threshold of a single-channel (sigmoid) head; null for a softmax head. */
  readonly threshold: number | null;
  /** Backbone/neck features → logits [N,h,w,outChannels]. */
  forward(features: tf.Tensor[]): tf.Tensor;
  /** Loss dict (`loss_ce`, `loss_dice`, ..., `acc_seg`) of logits against labels [N,H,W]. */
  losses(segLogits: tf.Tensor, labels: tf.Tensor): Record<string, tf.Tensor>;
  /** Rejects when a loss of the head cannot take `labels` (each loss's `checkLabels`). */
  checkLabels?(labels: tf.Tensor): Promise<void>;
}

/** A backbone or neck: images/features → list of feature maps. */
export interface FeatureExtractor extends Module {
  forward(input: tf.Tensor | tf.Tensor[]): tf.Tensor[];
}

export interface InferenceOptions {
  mode?: 'whole' | 'slide';
  crop_size?: [number, number];
  stride?: [number, number];
}

/** A segmentor (`segmentors` registry), e.g. EncoderDecoder. */
export interface Segmentor extends Module {
  readonly numClasses: number;
  readonly alignCorners: boolean;
  /** images [N,H,W,3] float32, labels [N,H,W] int32 → loss dict with `decode.`/`aux.` prefixes. */
  forwardTrain(images: tf.Tensor4D, labels: tf.Tensor3D): Record<string, tf.Tensor>;
  /** Rejects when a head's loss cannot take `labels` (out-of-range class ids); the runner awaits it before `forwardTrain`. */
  checkLabels?(labels: tf.Tensor3D): Promise<void>;
  /** Logits (or probabilities) [N,H,W,C] at the input size, whole or slide. */
  inference(images: tf.Tensor4D, options?: InferenceOptions): tf.Tensor4D;
  /** int32 label maps [N,H,W]. */
  predict(images: tf.Tensor4D, options?: InferenceOptions): tf.Tensor3D;
  /**
   * Logits [N,H,W,C] → int32 label maps [N,H,W]: argmax over classes, or sigmoid > the decode head's
   * `threshold` for a single-channel head. Every prediction path (evaluation, test, infer) uses this.
   */
  labelsFromLogits(logits: tf.Tensor4D): tf.Tensor3D;
}

// ---------------------------------------------------------------- optimization

export interface NamedParameter {
  readonly name: string;
  readonly variable: tf.Variable;
}

/**
 * A parameter group as an optimizer constructor hands it to an optimizer (MMCV's group dicts): its
 * tensors and only the hyper-parameters set explicitly; the rest fall back to the optimizer's defaults.
 */
export interface ParamGroupSpec {
  params: NamedParameter[];
  lr?: number;
  weight_decay?: number;
  /** Which custom key / rule produced the group (for logs). */
  key?: string;
  [hyperParameter: string]: unknown;
}

/** One parameter group: its tensors and its own hyper-parameters (MMCV's group dicts). */
export interface ParamGroup {
  params: NamedParameter[];
  lr: number;
  weight_decay: number;
  momentum?: number;
  /** The lr the schedule starts from (set when the optimizer is built). */
  initial_lr: number;
  /** Which custom key / rule produced the group, for logs ('head', 'bias', ...); undefined for the base settings. */
  key?: string;
  [hyperParameter: string]: unknown;
}

export interface OptimizerState {
  readonly type: string;
  /** Per-variable slots (momentum buffers, Adam moments) by parameter name. */
  readonly slots: Record<string, Record<string, tf.Tensor>>;
  readonly step: number;
  readonly groups: { lr: number; initial_lr: number }[];
}

/** An optimizer (`optimizers` registry) holding param groups. */
export interface Optimizer {
  readonly paramGroups: ParamGroup[];
  /** Applies one update from gradients keyed by `variable.name` (as `tf.variableGrads` returns them). */
  step(grads: tf.NamedTensorMap): void;
  stateDict(): OptimizerState;
  /** Restores a `stateDict()`; asynchronous because it may read tensors (GPU backends read only asynchronously). */
  loadStateDict(state: OptimizerState): Promise<void>;
  dispose(): void;
}

/** `optimizerConstructors` registry: builds an optimizer with param groups for a model. */
export interface OptimizerConstructor {
  build(model: Module): Optimizer;
  /** Every parameter's lr and weight decay, one line each (`segkit info --param-groups`). */
  describeParameters?(optimizer: Optimizer): string;
}

/** `lrSchedulers` registry (MMCV's LR hooks, by `policy`). */
export interface LrScheduler {
  /** Sets every group's lr for the 0-based iteration `iter`, before it runs. */
  apply(optimizer: Optimizer, iter: number): void;
  /** The lr a group of initial lr `initialLr` has at iteration `iter`. */
  lrAt(initialLr: number, iter: number): number;
}

// ---------------------------------------------------------------- data

/** A typed array with a shape (HWC for images, HW for label maps). */
export interface NdArray<T extends Uint8Array | Float32Array | Int32Array | Uint16Array = Uint8Array | Float32Array | Int32Array | Uint16Array> {
  data: T;
  shape: number[];
}

/** MMSegmentation's pipeline dict (`img`, `gt_semantic_seg`, `filename`, `ori_shape`, `img_shape`, ...). */
export type PipelineResults = Record<string, unknown> & {
  img?: NdArray;
  gt_semantic_seg?: NdArray;
  filename?: string;
  ori_filename?: string;
  ori_shape?: number[];
  img_shape?: number[];
  pad_shape?: number[];
  seg_fields?: string[];
};

/** A seeded random source shared by a pipeline, so a run is reproducible. */
export interface RandomSource {
  /** Uniform in [0, 1). */
  random(): number;
}

/** `transforms` registry: one pipeline step. */
export interface Transform {
  apply(results: PipelineResults, random: RandomSource): PipelineResults | Promise<PipelineResults>;
}

/** `datasets` registry. */
export interface Dataset {
  readonly length: number;
  readonly classes: readonly string[];
  readonly palette: readonly (readonly number[])[];
  readonly ignoreIndex: number;
  /** The pipeline's result for sample i; `random` drives its random transforms. */
  get(index: number, random?: RandomSource): Promise<PipelineResults>;
  /** Ground-truth label map of sample i at original resolution (for evaluation). */
  getGroundTruth(index: number): Promise<NdArray>;
}

// ---------------------------------------------------------------- evaluation

/**
 * `metrics` registry: a summary metric of MMSegmentation's `evaluate` (mIoU, mDice, mFscore, or a
 * plugin's), computed from the per-class pixel counts summed over the dataset.
 */
export interface Metric {
  /** The name configs use (`evaluation.metric`), e.g. 'mIoU'. */
  readonly name: string;
  /**
   * Per-class columns as fractions (NaN where 0/0), e.g. [['IoU', ...], ['Acc', ...]]; the summary value of
   * each column is `m<column>` (nan-mean over classes). A column another metric gives too keeps its first place.
   */
  perClass(totals: AreaStats): [column: string, values: Float64Array][];
}

// ---------------------------------------------------------------- hooks

/** Metrics of one evaluation (0.x fractions) and the per-class rows. */
export interface EvaluationResult {
  metrics: Record<string, number>;
  classTable: Record<string, string | number>[];
  /** The printed tables (per class and summary). */
  text: string;
}

/** What hooks may read of the runner, and the actions they may ask of it. */
export interface RunnerView {
  readonly workDir: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly maxIters: number;
  /** Iterations finished so far. */
  readonly iter: number;
  readonly model: Module;
  readonly optimizer: Optimizer;
  /** Start time of the run, `YYYYMMDD_HHMMSS` (log file names). */
  readonly timestamp: string;
  readonly bus: EventBus;
  /**
   * Runs the validation set with the model's test settings, publishes the tables (`log`) and `eval:end`,
   * then calls every hook's `afterVal`.
   */
  evaluate(metrics: readonly Metric[]): Promise<EvaluationResult>;
  /**
   * Writes a checkpoint of the current state (weights, optimizer, iteration, data order, hook state from
   * `beforeSaveCheckpoint`) atomically, and publishes `checkpoint:saved`. A failed write is a SegkitError
   * naming the file and the OS error; the file it would have replaced is untouched. `format` 'pth' writes a
   * PyTorch `.pth` MMSegmentation loads (segkit's resume state inside); default: by the file's extension.
   */
  saveCheckpoint(file: string, extra?: { best?: { metric: string; value: number; iter: number }; format?: 'safetensors' | 'pth' }): Promise<void>;
}
