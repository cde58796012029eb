import type { PipelineResults } from '../components';
import type { RandomState } from './random';

/** How a worker rebuilds the same dataset as the main thread: the config's plugins and the dataset config. */
export interface WorkerDatasetSource {
  /** Plugin package names or paths: the config's `plugins` and the packages the kernel loaded for its types (plugin objects cannot cross threads). */
  plugins: readonly string[];
  /** Folder relative plugin paths and data paths are resolved from. */
  configDir: string;
  /** The dataset config, e.g. `config.data.train`. */
  dataset: unknown;
  /** Its config path for error messages, e.g. `data.train`. */
  path?: string;
}

export interface SampleRequest {
  id: number;
  index: number;
  random: RandomState;
}

export interface SerializedError {
  name: string;
  message: string;
  configPath?: string;
  stack?: string;
}

export type WorkerMessage =
  | { kind: 'ready'; length: number }
  | { kind: 'fatal'; error: SerializedError }
  | { kind: 'sample'; id: number; result: PipelineResults }
  | { kind: 'failed'; id: number; error: SerializedError };

export function serializeError(error: unknown): SerializedError {
  const e = error instanceof Error ? error : new Error(String(error));
  return { name: e.name, message: e.message, configPath: (e as { configPath?: string }).configPath, stack: e.stack };
}

/** Array buffers a results dict owns outright, so they can be moved to the main thread instead of copied. */
export function transferables(value: unknown, found = new Set<ArrayBuffer>()): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) {
    const buffer = value.buffer;
    // Only whole, non-shared buffers: a view into Node's Buffer pool must not detach the pool.
    if (buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === buffer.byteLength) found.add(buffer);
  } else if (Array.isArray(value)) {
    for (const item of value) transferables(item, found);
  } else if (value && typeof value === 'object') {
    for (const item of Object.values(value)) transferables(item, found);
  }
  return [...found];
}
