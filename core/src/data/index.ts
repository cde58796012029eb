export { SeededRandom, uniform, randint, type RandomState } from './random';
export { Compose, buildPipeline } from './compose';
export { collate, batchToTensors, isNdArray, type Batch } from './collate';
export { DataLoader, type DataLoaderOptions, type DataLoaderState } from './loader';
export type { WorkerDatasetSource } from './worker-protocol';
