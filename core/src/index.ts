/**
 * `@segkit/core`: the application API (kernel, configs, training, evaluation, inference, checkpoints,
 * tools) plus everything of the plugin-author entry `@segkit/core/plugin`. Names are listed one by one:
 * the surface is deliberate, and `core/api-report.md` (checked by `npm test`) records it.
 */
export * from './plugin-api';

// ---------------------------------------------------------------- kernel
export { createKernel } from './plugin-system/kernel';
export type { Kernel, KernelOptions, PluginSpec, Registries, Registry, RegisteredComponent, BuildOptions, PluginManifest } from './plugin-system/kernel';

// ---------------------------------------------------------------- configs
export { loadConfig, defineConfig, mergeConfig, applyOverrides } from './config/loader';
export type { ConfigDict, LoadedConfig } from './config/loader';
export { parseRunSpec, IGNORED_KEYS } from './config/run-spec';
export type { RunSpec, RunSpecOptions, HookSpec } from './config/run-spec';
export { loadMmsegConfig, readMmsegConfig, convertMmsegConfig, writeMmsegConversion, defaultTypeCatalog } from './config/mmseg';
export type { MmsegConfigOptions, ConvertOptions, ConvertResult, TypeCatalog, TypeCategory } from './config/mmseg';

// ---------------------------------------------------------------- high-level API (MMSegmentation's apis/)
export { loadConfigAndKernel, initSegmentor, inferenceSegmentor, testSegmentor, modelFromCheckpoint } from './apis/segmentor';
export type { SegmentorHandle, InitOptions, ImageInput, InferenceOutputs, InferenceResult, TestOptions, ConfigSource } from './apis/segmentor';

// ---------------------------------------------------------------- training
export { train, IterBasedRunner } from './training/runner';
export type { TrainOptions, TrainResult } from './training/runner';
export { buildOptimizer, buildOptimizerConstructor } from './training/build';
export { seedEverything, seedIteration } from './training/seed';
export { forwardBackward } from './training/step';
export type { ForwardBackward } from './training/step';
export { DataLoader } from './data/loader';
export type { DataLoaderOptions, DataLoaderState } from './data/loader';

// ---------------------------------------------------------------- models and evaluation
export { EncoderDecoder, encoderDecoderDefinition } from './models/encoder-decoder';
export type { EncoderDecoderOptions, SegmentorInferenceOptions } from './models/encoder-decoder';
export { slideInference, slideWindows } from './models/inference';
export { evaluateSegmentor, predictSample } from './evaluation/evaluate';
export type { EvaluateOptions } from './evaluation/evaluate';
// The metrics come with the runtime entry, through export * from './plugin-api'.

// ---------------------------------------------------------------- checkpoints
export { saveCheckpoint, readCheckpoint } from './checkpoint/segkit-checkpoint';
export type { LoadedCheckpoint } from './checkpoint/segkit-checkpoint';
export { readSafetensors, writeSafetensors } from './checkpoint/safetensors';
export type { StoredTensor } from './checkpoint/safetensors';
export {
  readTorchCheckpoint,
  writeTorchCheckpoint,
  saveTorchCheckpoint,
  writeTorchLayoutSafetensors,
  readCheckpointFile,
  convertCheckpoint,
  loadCheckpoint,
  loadPretrainedWeights,
  loadStateDictIntoModule,
  formatLoadReport,
  fetchCheckpoint,
  checkpointCacheDir,
  resolveCheckpointUrl,
  oihwToHwio,
  hwioToOihw,
  shapeInLayout,
  readTorchCheckpointMeta,
  saveSegkitTorchCheckpoint,
  readSegkitTorchCheckpoint,
  readResumeCheckpoint,
  checkpointFormatOf,
} from './checkpoint';
export type { TorchCheckpoint, CheckpointContents, LoadCheckpointOptions, LoadCheckpointReport, FetchCheckpointOptions, ReadTorchCheckpointOptions, CheckpointFormat } from './checkpoint';

// ---------------------------------------------------------------- tools (not on the training path)
export { plotLogCurves, readLogCurves, renderCurvesSvg } from './tools/plot';
export type { CurveSeries, PlotOptions, SvgOptions } from './tools/plot';
export { renderOverlay } from './tools/overlay';
export { describeModel, formatModelInfo, configCropSize } from './tools/model-info';
export type { ModuleInfo, ModelInfoReport } from './tools/model-info';
export { confusionMatrixOfTestSplit, confusionMatrixCsv, renderConfusionMatrixSvg } from './tools/confusion-matrix';
export { browseDataset, browseSample, denormalizeImage } from './tools/browse-dataset';
export type { BrowseOptions, BrowseSample, ImageNormConfig } from './tools/browse-dataset';
export { analyzeLogs, readRuns, renderRunsSvg, movingAverage, calTrainTime, formatTrainTime } from './tools/analyze-logs';
export type { AnalyzeLogsOptions, LabelledSeries, TrainTimeSummary } from './tools/analyze-logs';
export { benchmarkInference, benchmarkTraining, formatBenchmark } from './tools/benchmark';
export type { InferenceTiming, TrainingTiming } from './tools/benchmark';
export { startProgress, formatDuration, formatProgressLine } from './tools/progress';
export type { Progress, ProgressOptions, ProgressStream } from './tools/progress';
export { BUILTIN_PALETTES, colorizeLabels, defaultPalette, expandImageArguments, readPaletteOption, resolvePalette } from './tools/prediction-files';
export type { ClassPalette, Rgb } from './tools/prediction-files';
export { publishCheckpoint, type PublishResult } from './cli/publish-command';
export { startLauncher, threadsPerRank, LAUNCHERS } from './distributed/launch';

// ---------------------------------------------------------------- export (segkit export)
export { EXPORTERS, exportFormats, exportSegmentor, testPipelineNormalization } from './export';
export type { ExportOptions, ExportReport, Exporter } from './export';
export { exportOnnx, segmentorOnnxBytes, buildOnnxModel, OnnxGraphBuilder, ONNX_OPSET, encodeOnnxModel, decodeOnnxModel } from './export/onnx';
export type { ImageNormalization, SegmentorOnnxOptions, OnnxModelSpec, OnnxGraphInput, OnnxInitializerBytes } from './export/onnx';

// ---------------------------------------------------------------- TF.js export (for the browser runtime, @segkit/web)
export { exportTfjs, readTfjsExport } from './export/tfjs';
