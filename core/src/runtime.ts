/**
 * `@segkit/core/runtime`: what running a model needs, with no Node built-in — nn modules, model base
 * classes, the registries and a kernel that builds from plugin objects, the inference path (whole and
 * slide, the test pipeline over pixels), metrics, palettes and the TF.js export format's reader. A browser
 * bundle (see @segkit/web) and the model plugins import core through this entry. `@segkit/core/plugin`
 * and `@segkit/core` export all of it too.
 */
// ---------------------------------------------------------------- plugins and the registry contracts
export { definePlugin, isSegkitPlugin, backendDefinition, TOKENS } from './plugin-system/plugin';
export type { SegkitPlugin, ComponentRecord, CliContribution, CliServices, PluginComponents } from './plugin-system/plugin';
export { REGISTRY_NAMES, isRegistryName } from './plugin-system/registries';
export type {
  RegistryContracts,
  RegistryName,
  InstanceOf,
  ParentOf,
  ParentArgument,
  NoParent,
  LossParent,
  SamplerParent,
  OptimizerParent,
  LrSchedulerParent,
  HookParent,
  ComponentDefinition,
  ComponentOf,
  BuildContext,
  Logger,
} from './plugin-system/registries';
export { CPU_BACKEND_PROVIDER, backendHasKernel, selectBackend, SGD_UPDATE_KERNEL } from './plugin-system/backend';
export type { BackendProvider, BackendChoice, BackendLoadRequest } from './plugin-system/backend';

// ---------------------------------------------------------------- errors and option schemas
export { SegkitError, isSegkitError, nearestName, joinPath } from './errors';
export { z } from 'zod';
export { validateOptions, describeValue, iterationBasedOnly } from './config/validation';

// ---------------------------------------------------------------- component interfaces
export type {
  Reduction,
  LossCallOptions,
  Loss,
  SamplerContext,
  PixelSampler,
  DecodeHead,
  FeatureExtractor,
  InferenceOptions,
  Segmentor,
  NamedParameter,
  ParamGroupSpec,
  ParamGroup,
  OptimizerState,
  Optimizer,
  OptimizerConstructor,
  LrScheduler,
  NdArray,
  PipelineResults,
  RandomSource,
  Transform,
  Dataset,
  Metric,
  EvaluationResult,
  RunnerView,
} from './components';

// ---------------------------------------------------------------- config types (augmented by plugins)
export type {
  BackboneOptionsMap,
  NeckOptionsMap,
  HeadOptionsMap,
  SegmentorOptionsMap,
  LossOptionsMap,
  SamplerOptionsMap,
  OptimizerOptionsMap,
  OptimizerConstructorOptionsMap,
  LrSchedulerOptionsMap,
  DatasetOptionsMap,
  TransformOptionsMap,
  HookOptionsMap,
  MetricOptionsMap,
  ComponentConfig,
  BackboneConfig,
  NeckConfig,
  HeadConfig,
  LossConfig,
  SamplerConfig,
  OptimizerConfig,
  DatasetConfig,
  TransformConfig,
  HookConfig,
  DecodeHeadBaseOptions,
  ModelConfig,
  DataSplitConfig,
  Mergeable,
  SegkitConfig,
  OpenTypeName,
  KnownOptionsCheck,
} from './config/types';
export type { PluginTypedSections } from './config/run-spec';

// ---------------------------------------------------------------- hooks and events
export { Hook, Priority } from './training/hook';
export type { HookPoint, PriorityName } from './training/hook';
export { EventBus, HOOK_FAILURE_LIMIT } from './bus';
export type { SegkitEvent, SegkitEventType, EventOf, EventHandlers, GroupLr } from './bus';

// ---------------------------------------------------------------- models
export * as nn from './nn';
export { BaseDecodeHead, decodeHeadBaseSchema, componentConfigSchema, normConfigSchema, actConfigSchema } from './models/decode-head';
export type { ParsedDecodeHeadOptions } from './models/decode-head';
export { computeDecodeLosses, checkDecodeLossConfig } from './models/decode-losses';
export type { DecodeLossOptions } from './models/decode-losses';

// ---------------------------------------------------------------- losses
export { BaseLoss, lossWhere, loadLossClassWeight, checkPerClassList } from './losses/base-loss';
export type { BaseLossOptions } from './losses/base-loss';
export { ADD_N_MAX_INPUTS, FLOAT32_EPS, reduceLoss, sumTensors, weightReduceLoss } from './losses/reduce';
export { classWeightSchema, loadClassWeight, parseNpy } from './losses/class-weight';
export type { ClassWeightOptions } from './losses/class-weight';
export { validMask, labelsWithIgnoredAsZero, checkLabelRange, checkLogitsMatchLabels, oneHotTargets } from './losses/labels';
export { accuracy } from './losses/accuracy';
export type { AccuracyOptions } from './losses/accuracy';
export { reductionSchema, lossWeightSchema, ignoreIndexSchema, lossNameSchema } from './losses/schemas';
export { softmaxRegionInputs, combineClassLosses } from './losses/overlap';
export { parseLosses, parseLossTensors, readLossValues } from './losses/parse-losses';
export type { LossDictValue, ParsedLosses, ParsedLossTensors } from './losses/parse-losses';

// ---------------------------------------------------------------- data
export { SeededRandom, uniform, randint } from './data/random';
export type { RandomState } from './data/random';
export { Compose, buildPipeline } from './data/compose';
export { collate, batchToTensors, isNdArray } from './data/collate';
export type { Batch } from './data/collate';
export { prettyTable } from './evaluation/metrics';
export { formatTextTable } from './tools/text-table';

// ---------------------------------------------------------------- kernel without Node
export { RuntimeKernel, Registry, createRuntimeKernel } from './plugin-system/runtime-kernel';
export type { RuntimeKernelOptions, RegisteredComponent, Registries, BuildOptions } from './plugin-system/runtime-kernel';
export { isNode, nodeBuiltin } from './host';

// ---------------------------------------------------------------- segmentors and inference
export { EncoderDecoder, encoderDecoderDefinition } from './models/encoder-decoder';
export type { EncoderDecoderOptions, SegmentorInferenceOptions } from './models/encoder-decoder';
export { SLIDE_BATCH_PIXELS, defaultSlideBatchSize, slideInference, slideWindows, type SlideInferenceOptions } from './models/inference';
export { predictSample, inferSample } from './evaluation/evaluate';
export type { SampleOutputs, SamplePrediction } from './evaluation/evaluate';
export { pixelsToBgr, runTestPipelineOnPixels, testPipelineSteps, segmentPixels } from './apis/pixels';
export type { PixelImage, SegmentationOutputs, PixelSegmentation } from './apis/pixels';
export {
  EVAL_METRICS,
  BUILTIN_METRICS,
  MIOU,
  MDICE,
  fscoreMetric,
  resolveMetrics,
  MetricAccumulator,
  intersectAndUnion,
  totalAreaToMetrics,
  classTableRows,
  formatMetricTables,
} from './evaluation/metrics';
export type { EvalMetric, AreaStats, LabelArray, ComputeOptions, EvalResults } from './evaluation/metrics';

// ---------------------------------------------------------------- palettes and overlays
export { BUILTIN_PALETTES, colorizeLabels, defaultPalette, resolvePalette, parsePalette } from './tools/palette';
export type { ClassPalette, Rgb } from './tools/palette';
export { renderOverlay } from './tools/overlay';

// ---------------------------------------------------------------- the TF.js export format (reading it)
export { TFJS_FORMAT, readTfjsModelJson, segmentorFromTfjsArtifacts } from './export/tfjs-format';
export type { TfjsModelJson, SegkitTfjsMetadata, TfjsSegmentor } from './export/tfjs-format';

// ---------------------------------------------------------------- ONNX export of modules (types only; model plugins implement exportOnnx)
export type { OnnxExportContext, OnnxValue, OnnxDim, OnnxDtype, OnnxSize, OnnxNodeOptions, OnnxAttributeValue, OnnxExportable } from './export/onnx/types';
export { ADAM_UPDATE_KERNEL } from './plugin-system/backend';
