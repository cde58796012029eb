/**
 * `@segkit/core/plugin`: what a plugin author needs — definePlugin and the registry contracts, the
 * component interfaces, base classes, nn modules, schemas and helpers shared by plugins. It is
 * `@segkit/core/runtime` (no Node built-ins; model code imports that) plus the Node-only helpers below.
 * Everything here is also exported by `@segkit/core` (where config types are augmented with
 * `declare module '@segkit/core'`).
 */
export * from './runtime';

// ---------------------------------------------------------------- Node only: CLI, files, images
export type { Command as CliCommand } from 'commander';
export { writeFileAtomic, copyFileAtomic, removeStaleTemporaryFiles } from './checkpoint/atomic-file';
export type { CheckpointMeta } from './checkpoint/segkit-checkpoint';
export { readImage, readLabelMap, writePng, encodePng, svgToPng } from './io/image';
export type { ImageSource, ReadImageOptions } from './io/image';
export { isDict } from './config/loader';

// ---------------------------------------------------------------- data-parallel training (a launcher plugin implements the collectives)
export { SINGLE_PROCESS, processGroup, setProcessGroup, broadcastJson } from './distributed/communicator';
export type { Communicator, LauncherContribution } from './distributed/communicator';
export { allreduceGradients, broadcastModel, averageScalars, bucketize, DEFAULT_BUCKET_BYTES } from './distributed/data-parallel';
export type { GradientSyncResult } from './distributed/data-parallel';
