export * from './errors';
export * from './plugin-system/registries';
export * from './plugin-system/plugin';
export type { Command as CliCommand } from 'commander';
export * from './plugin-system/backend';
export * from './bus';
export * from './config/loader';
export * from './config/types';
export * from './config/validation';
export { Kernel, Registry, createKernel, resolvePlugin, discoverInstalledPlugins, type KernelOptions, type PluginSpec, type Registries, type RegisteredComponent } from './plugin-system/kernel';
export { loadModule } from './plugin-system/module-loader';
export { z } from 'zod';
export * from './components';
export * as nn from './nn';
export * from './data';
export * from './evaluation';
export * from './tools';
export { readImage, readLabelMap, writePng, encodePng, svgToPng, type ImageSource, type ReadImageOptions } from './io/image';
export * from './losses';
export { computeDecodeLosses, checkDecodeLossConfig, type DecodeLossOptions } from './models/decode-losses';
export * from './models';
export * from './tools/model-info';
export * from './training';
export { loadConfigAndKernel, initSegmentor, inferenceSegmentor, testSegmentor, modelFromCheckpoint, configSection as requireConfigSection, testDatasetConfig, type SegmentorHandle, type InitOptions, type ImageInput, type InferenceResult, type TestOptions, type ConfigSource } from './apis/segmentor';
export { loadMmsegConfig, readMmsegConfig, convertMmsegConfig, writeMmsegConversion, defaultTypeCatalog } from './config/mmseg';
export type { MmsegConfigOptions, ConvertOptions, ConvertResult, TypeCatalog, TypeCategory } from './config/mmseg';
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
  type TorchCheckpoint,
  type CheckpointContents,
  type LoadCheckpointOptions,
  type LoadCheckpointReport,
  type FetchCheckpointOptions,
} from './checkpoint';
