export * from './errors';
export * from './registries';
export * from './plugin';
export type { Command as CliCommand } from 'commander';
export * from './backend';
export * from './bus';
export * from './config';
export * from './config-types';
export * from './validation';
export { Kernel, Registry, createKernel, resolvePlugin, discoverInstalledPlugins, type KernelOptions, type PluginSpec, type Registries, type RegisteredComponent } from './kernel';
export { loadModule } from './module-loader';
export { z } from 'zod';
export * from './components';
export * as nn from './nn';
export * from './data';
export * from './evaluation';
export * from './visualization';
export * from './losses';
export { computeDecodeLosses, checkDecodeLossConfig, type DecodeLossOptions } from './models/decode-losses';
export * from './models';
export * from './model-info';
export * from './engine';
export { loadConfigAndKernel, initSegmentor, inferenceSegmentor, testSegmentor, modelFromCheckpoint, configSection as requireConfigSection, testDatasetConfig, type SegmentorHandle, type InitOptions, type ImageInput, type InferenceResult, type TestOptions, type ConfigSource } from './apis/segmentor';
export { loadMmsegConfig, readMmsegConfig, convertMmsegConfig, writeMmsegConversion, defaultTypeCatalog } from './mmseg-config';
export type { MmsegConfigOptions, ConvertOptions, ConvertResult, TypeCatalog, TypeCategory } from './mmseg-config';
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
