// One checkpoint layer: PyTorch `.pth` and `.safetensors` in and out, key and layout mapping, loading into
// segkit modules, and the model-zoo cache.
export {
  readTorchCheckpoint,
  readTorchCheckpointMeta,
  writeTorchCheckpoint,
  toJson,
  ALLOWED_TORCH_GLOBALS,
  SEGKIT_OPTIMIZER_ENTRY,
  type TorchCheckpoint,
  type ReadTorchCheckpointOptions,
  type WriteTorchCheckpointOptions,
} from './torch-format';
export { openLegacyCheckpoint, type LegacyCheckpoint } from './torch-legacy';
export {
  saveSegkitTorchCheckpoint,
  readSegkitTorchCheckpoint,
  readResumeCheckpoint,
  checkpointFormatOf,
  datasetMeta,
  type CheckpointFormat,
} from './segkit-pth';
export { materializeTensor, STORAGE_TYPES, type TensorData, type TensorRef, type StorageRef, type StorageTypeName, type TorchDtype } from './torch-tensors';
export { unpickle, unpickleAt, PickleTruncatedError, PyDict, PyGlobal, type PickleValue, type PickleKey, type UnpickleOptions } from './pickle-reader';
export { pickle, PickleTuple, PickleOrderedDict, PickleTensorRef, type PickleWritable } from './pickle-writer';
export { ZipArchive } from './zip-archive';
export { ZipWriter } from './zip-writer';
export {
  oihwToHwio,
  hwioToOihw,
  shapeInLayout,
  convertLayout,
  reviseKeys,
  selectPrefix,
  addPrefix,
  detectStateDictKind,
  mapImageNetBackbone,
  type WeightLayout,
  type StateDictKind,
} from './mapping';
export { loadStateDictIntoModule, formatLoadReport, type LoadStateDictOptions, type LoadStateDictReport } from './load';
export {
  readCheckpointFile,
  moduleStateDict,
  saveTorchCheckpoint,
  writeTorchLayoutSafetensors,
  convertCheckpoint,
  type CheckpointContents,
  type ConvertCheckpointOptions,
} from './checkpoint-file';
export {
  OPEN_MMLAB_MODEL_URLS,
  TORCHVISION_MODEL_URLS,
  segkitHome,
  checkpointCacheDir,
  isRemoteCheckpoint,
  resolveCheckpointUrl,
  expectedHashPrefix,
  fetchCheckpoint,
  type FetchCheckpointOptions,
} from './model-zoo';
export { loadCheckpoint, loadPretrainedWeights, pretrainedFromInitCfg, type LoadCheckpointOptions, type LoadCheckpointReport, type PretrainedInit } from './pretrained';
