export { IterBasedRunner, train, type TrainOptions, type TrainResult } from './runner';
export { evaluateSegmentor, predictSample, type EvaluateOptions } from '../evaluation/evaluate';
export { saveCheckpoint, readCheckpoint, type CheckpointMeta, type LoadedCheckpoint } from '../checkpoint/segkit-checkpoint';
export { readSafetensors, writeSafetensors, type StoredTensor } from '../checkpoint/safetensors';
export { seedEverything } from './seed';
export { buildOptimizer, buildOptimizerConstructor } from './build';
export { Hook, Priority, HOOK_POINTS, sortByPriority, type HookPoint, type PriorityName } from './hook';
export { writeFileAtomic, copyFileAtomic, removeStaleTemporaryFiles } from '../checkpoint/atomic-file';
