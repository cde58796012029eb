export { IterBasedRunner, train, type TrainOptions, type TrainResult } from './runner';
export { evaluateSegmentor, predictSample, type EvaluateOptions } from './evaluate';
export { saveCheckpoint, readCheckpoint, type CheckpointMeta, type LoadedCheckpoint } from './checkpoint';
export { readSafetensors, writeSafetensors, type StoredTensor } from './safetensors';
export { buildHooks } from './hooks';
export { seedEverything } from './seed';
export { buildOptimizer, buildOptimizerConstructor, buildLrScheduler, configSection } from './build';
export { Hook, Priority, HOOK_POINTS, sortByPriority, type HookPoint, type PriorityName } from './hook';
export { writeFileAtomic, copyFileAtomic, removeStaleTemporaryFiles } from './atomic-file';
