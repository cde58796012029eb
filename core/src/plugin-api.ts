/**
 * `@segkit/core/plugin`: what a plugin author needs — definePlugin and the registry contracts, the
 * component interfaces, base classes, nn modules, schemas and helpers shared by plugins. Everything here
 * is also exported by `@segkit/core` (where config types are augmented with `declare module '@segkit/core'`).
 */
// ---------------------------------------------------------------- plugins and the registry contracts
export { definePlugin, isSegkitPlugin, backendDefinition, TOKENS } from './plugin-system/plugin';
export type { SegkitPlugin, ComponentRecord, CliContribution, CliServices, PluginComponents } from './plugin-system/plugin';
export type { Command as CliCommand } from 'commander';
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
export type { BackendProvider, BackendChoice } from './plugin-system/backend';

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
} from './config/types';

// ---------------------------------------------------------------- hooks and events
export { Hook, Priority } from './training/hook';
export type { HookPoint, PriorityName } from './training/hook';
export { EventBus, HOOK_FAILURE_LIMIT } from './bus';
export type { SegkitEvent, SegkitEventType, EventOf, EventHandlers, GroupLr } from './bus';
export { writeFileAtomic, copyFileAtomic, removeStaleTemporaryFiles } from './checkpoint/atomic-file';
export type { CheckpointMeta } from './checkpoint/segkit-checkpoint';

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

// ---------------------------------------------------------------- data and images
export { SeededRandom, uniform, randint } from './data/random';
export type { RandomState } from './data/random';
export { Compose, buildPipeline } from './data/compose';
export { collate, batchToTensors, isNdArray } from './data/collate';
export type { Batch } from './data/collate';
export { readImage, readLabelMap, writePng, encodePng, svgToPng } from './io/image';
export type { ImageSource, ReadImageOptions } from './io/image';
export { prettyTable } from './evaluation/metrics';
export { formatTextTable } from './tools/text-table';
export { isDict } from './config/loader';
export type { BackendLoadRequest } from './plugin-system/backend';
