import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { SegkitError } from '../errors';
import type { Dataset, PipelineResults } from '../components';
import type { Kernel } from '../plugin-system/kernel';
import { collate, type Batch } from './collate';
import { SeededRandom, type RandomState } from './random';
import type { SampleRequest, SerializedError, WorkerDatasetSource, WorkerMessage } from './worker-protocol';
import { formatValue } from '../config/validation';

export interface DataLoaderOptions {
  /** Samples per batch (MMSegmentation's `samples_per_gpu`). */
  batchSize: number;
  /** Reshuffle the sample order every epoch (training: true). */
  shuffle?: boolean;
  /** Drop the last incomplete batch of an epoch (training: true). */
  dropLast?: boolean;
  /** Never end: after the last batch of an epoch the next epoch starts (iteration-based training). */
  infinite?: boolean;
  /** Seed of the shuffle order and of every random transform. */
  seed?: number;
  /** Worker threads that decode and augment (`workers_per_gpu`); 0 runs the pipeline on the calling thread. */
  workers?: number;
  /** Batches each worker keeps in flight ahead of the consumer (PyTorch's prefetch_factor). */
  prefetchFactor?: number;
  /** How workers rebuild the dataset; required when `workers > 0`. */
  source?: WorkerDatasetSource;
  /**
   * Data-parallel training: this process's part of every epoch (MMSegmentation's DistributedSampler).
   * The epoch's order, padded by repeating its start to a multiple of `size`, is dealt out round-robin:
   * rank r takes positions r, r + size, ... So the union of the ranks' k-th batches is the k-th batch of
   * one process with `size` times the batch size, and each sample keeps the random stream of its
   * position in the epoch.
   */
  shard?: { rank: number; size: number };
}

/** Everything needed to continue with the same data order and the same augmentations (saved in checkpoints). */
export interface DataLoaderState {
  seed: number;
  /** Epoch of the next batch. */
  epoch: number;
  /** Index of the next batch within its epoch. */
  position: number;
  /** Random state of the next batch's first sample (derived from seed, epoch and position; stored for inspection and checks). */
  rng: RandomState;
  /** Samples per batch over all ranks (batch size × ranks) when saved; absent in checkpoints before data-parallel training (= the batch size). */
  globalBatchSize?: number;
}

interface PendingBatch {
  epoch: number;
  position: number;
  samples: Promise<{ indices: number[]; results: PipelineResults[] }>;
}

function deserializeError(error: SerializedError): Error {
  const rebuilt = error.name === 'SegkitError' ? new SegkitError(error.message, error.configPath) : new Error(error.message);
  if (error.stack && error.name !== 'SegkitError') rebuilt.stack = error.stack;
  return rebuilt;
}

/** A pool of worker threads, each holding its own copy of the dataset; requests go to the least busy worker. */
class WorkerPool {
  private readonly workers: { worker: Worker; inFlight: number }[] = [];
  private readonly pending = new Map<number, { resolve: (r: PipelineResults) => void; reject: (e: Error) => void; slot: number }>();
  private nextId = 0;
  private fatal: Error | undefined;

  constructor(count: number, source: WorkerDatasetSource) {
    const script = path.join(__dirname, 'worker.js');
    if (!fs.existsSync(script)) throw new SegkitError(`data: worker script ${script} not found; workers need @segkit/core's compiled output (use workers_per_gpu=0 otherwise)`);
    for (let slot = 0; slot < count; slot++) {
      const worker = new Worker(script, { workerData: source });
      worker.unref(); // only in-flight requests keep the process alive
      worker.on('message', (message: WorkerMessage) => this.onMessage(slot, message));
      worker.on('error', (error) => this.failAll(error));
      worker.on('exit', (code) => {
        if (code !== 0 && !this.closed) this.failAll(new Error(`data: loader worker ${slot} exited with code ${code}`));
      });
      this.workers.push({ worker, inFlight: 0 });
    }
  }

  private closed = false;

  private onMessage(slot: number, message: WorkerMessage): void {
    if (message.kind === 'ready') return;
    if (message.kind === 'fatal') return this.failAll(deserializeError(message.error));
    const request = this.pending.get(message.id);
    if (!request) return;
    this.pending.delete(message.id);
    this.release(slot);
    if (message.kind === 'sample') request.resolve(message.result);
    else request.reject(deserializeError(message.error));
  }

  private release(slot: number): void {
    const entry = this.workers[slot]!;
    entry.inFlight -= 1;
    if (entry.inFlight === 0) entry.worker.unref();
  }

  private failAll(error: Error): void {
    this.fatal ??= error;
    for (const [id, request] of this.pending) {
      this.pending.delete(id);
      this.release(request.slot);
      request.reject(error);
    }
  }

  request(index: number, random: RandomState): Promise<PipelineResults> {
    if (this.fatal) return Promise.reject(this.fatal);
    let slot = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.workers[i]!.inFlight < this.workers[slot]!.inFlight) slot = i;
    const entry = this.workers[slot]!;
    if (entry.inFlight === 0) entry.worker.ref();
    entry.inFlight += 1;
    const id = this.nextId++;
    const message: SampleRequest = { id, index, random };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, slot });
      entry.worker.postMessage(message);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new Error('data: loader closed'));
    await Promise.all(this.workers.map(({ worker }) => worker.terminate()));
  }
}

/**
 * Batches a dataset: shuffling, drop_last, endless iteration, and worker threads that decode and augment
 * ahead of the consumer. Sample `i` of epoch `e` always gets the same index and the same random stream
 * (derived from seed, epoch and position), so the data order and augmentations do not depend on the number
 * of workers and a resumed run continues exactly where it stopped.
 */
export class DataLoader implements AsyncIterable<Batch> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly infinite: boolean;
  readonly workers: number;
  private seed: number;
  private epoch = 0;
  private position = 0;
  private readonly prefetchFactor: number;
  private readonly pool: WorkerPool | undefined;
  private readonly queue: PendingBatch[] = [];
  private readonly permutations = new Map<number, number[]>();
  private readonly shardRank: number;
  private readonly shardCount: number;

  constructor(readonly dataset: Dataset, options: DataLoaderOptions) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
      throw new SegkitError(`data.samples_per_gpu: expected a positive integer, got ${options.batchSize}`, 'data.samples_per_gpu');
    }
    const workers = options.workers ?? 0;
    if (!Number.isInteger(workers) || workers < 0) {
      throw new SegkitError(`data.workers_per_gpu: expected an integer >= 0, got ${workers}`, 'data.workers_per_gpu');
    }
    if (dataset.length === 0) throw new SegkitError('data: the dataset is empty');
    const shard = options.shard ?? { rank: 0, size: 1 };
    if (!Number.isInteger(shard.size) || shard.size < 1 || !Number.isInteger(shard.rank) || shard.rank < 0 || shard.rank >= shard.size) {
      throw new SegkitError(`data: invalid shard rank ${shard.rank} of ${shard.size} processes`);
    }
    this.shardRank = shard.rank;
    this.shardCount = shard.size;
    this.batchSize = options.batchSize;
    this.shuffle = options.shuffle ?? false;
    this.dropLast = options.dropLast ?? false;
    this.infinite = options.infinite ?? false;
    this.seed = options.seed ?? 0;
    this.workers = workers;
    this.prefetchFactor = options.prefetchFactor ?? 2;
    if (this.batchesPerEpoch === 0) {
      throw new SegkitError(`data: drop_last with ${dataset.length} samples and batch size ${this.batchSize} leaves no batch; lower samples_per_gpu`);
    }
    if (workers > 0) {
      if (!options.source) throw new SegkitError('data: workers_per_gpu > 0 needs the dataset config and plugin names so workers can rebuild the dataset');
      this.pool = new WorkerPool(workers, options.source);
    }
  }

  /**
   * Builds the dataset from its config and a loader over it. `plugins` are the config's plugin names;
   * with the packages the kernel loaded for the config's types, they let worker threads build the same kernel.
   */
  static fromConfig(
    kernel: Kernel,
    datasetCfg: unknown,
    options: Omit<DataLoaderOptions, 'source'> & { plugins: readonly string[]; path?: string },
  ): DataLoader {
    const configPath = options.path ?? 'data';
    const dataset = kernel.build('datasets', datasetCfg, { path: configPath });
    const { plugins: listed, path: _path, ...loaderOptions } = options;
    // Workers build their own kernel: they also need the providers the kernel loaded because the config named their types.
    const plugins = [...listed, ...kernel.autoLoadedPlugins.filter((name) => !listed.includes(name))];
    return new DataLoader(dataset, { ...loaderOptions, source: { plugins, configDir: kernel.configDir, dataset: datasetCfg, path: configPath } });
  }

  /** Samples this process loads per epoch: the dataset, or its shard (padded to a multiple of the ranks, then dealt out). */
  get samplesPerEpoch(): number {
    return Math.ceil(this.dataset.length / this.shardCount);
  }

  /** Samples per step over all ranks. */
  get globalBatchSize(): number {
    return this.batchSize * this.shardCount;
  }

  /** Batches in one epoch. */
  get batchesPerEpoch(): number {
    const n = this.samplesPerEpoch;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Alias of `batchesPerEpoch` (PyTorch's `len(loader)`). */
  get length(): number {
    return this.batchesPerEpoch;
  }

  state(): DataLoaderState {
    return {
      seed: this.seed,
      epoch: this.epoch,
      position: this.position,
      rng: this.sampleRandom(this.epoch, this.globalPosition(this.position * this.batchSize)).getState(),
      globalBatchSize: this.globalBatchSize,
    };
  }

  /**
   * Continues from a saved state: the next batch is the one that would have come next in the saved run.
   * A state saved with another number of ranks continues at the same sample of the epoch when the global
   * batch size (ranks × samples_per_gpu) is the same; otherwise at the batch holding the next unseen
   * sample, and the returned note says so.
   */
  loadState(state: DataLoaderState): string | undefined {
    const valid = state && [state.seed, state.epoch, state.position].every((v) => Number.isInteger(v)) && state.epoch >= 0 && state.position >= 0;
    if (!valid) throw new SegkitError(`data loader state: expected { seed, epoch, position } integers, got ${formatValue(state)}`);
    const savedGlobalBatch = state.globalBatchSize ?? this.batchSize;
    const consumed = state.position * savedGlobalBatch;
    const position = Math.floor(consumed / this.globalBatchSize);
    const note =
      consumed % this.globalBatchSize === 0
        ? undefined
        : `data loader state: saved with ${savedGlobalBatch} samples per step, resumed with ${this.globalBatchSize}: continuing at sample ${position * this.globalBatchSize} of epoch ${state.epoch} (${consumed} were done)`;
    if (position > this.batchesPerEpoch) {
      throw new SegkitError(`data loader state: position ${position} is past the ${this.batchesPerEpoch} batches of an epoch (was the dataset or batch size changed?)`);
    }
    this.seed = state.seed;
    this.epoch = state.epoch;
    this.position = position;
    this.queue.length = 0;
    this.permutations.clear();
    return note;
  }

  /** The dataset indices this process loads in epoch `epoch`, in loading order (its shard when data-parallel). */
  order(epoch: number): number[] {
    let order = this.permutations.get(epoch);
    if (!order) {
      const full = this.shuffle ? SeededRandom.fromSeed(this.seed, epoch).permutation(this.dataset.length) : Array.from({ length: this.dataset.length }, (_, i) => i);
      // DistributedSampler: pad by repeating the start of the order, then every size-th position from rank.
      order = this.shardCount === 1 ? full : Array.from({ length: this.samplesPerEpoch }, (_, k) => full[(k * this.shardCount + this.shardRank) % full.length]!);
      this.permutations.set(epoch, order);
      for (const key of this.permutations.keys()) if (key < epoch - 1) this.permutations.delete(key);
    }
    return order;
  }

  /** Position in the whole epoch's order of this process's `shardPosition`-th sample. */
  private globalPosition(shardPosition: number): number {
    return shardPosition * this.shardCount + this.shardRank;
  }

  private sampleRandom(epoch: number, samplePosition: number): SeededRandom {
    return SeededRandom.fromSeed(this.seed, epoch, samplePosition);
  }

  private startBatch(epoch: number, position: number): PendingBatch {
    const order = this.order(epoch);
    const start = position * this.batchSize;
    const end = Math.min(start + this.batchSize, order.length);
    const indices = order.slice(start, end);
    const results = indices.map((index, k) => {
      const random = this.sampleRandom(epoch, this.globalPosition(start + k));
      return this.pool ? this.pool.request(index, random.getState()) : this.dataset.get(index, random);
    });
    const samples = Promise.all(results).then((r) => ({ indices, results: r }));
    samples.catch(() => undefined); // a prefetched batch's error is raised when that batch is taken
    return { epoch, position, samples };
  }

  /** The (epoch, position) after the given batch, or undefined at the end of a finite epoch. */
  private following(epoch: number, position: number): [number, number] | undefined {
    if (position + 1 < this.batchesPerEpoch) return [epoch, position + 1];
    return this.infinite ? [epoch + 1, 0] : undefined;
  }

  /**
   * The next batch, or null once at the end of each epoch unless `infinite` (the following call starts the next epoch).
   * `batch.dataTime` is the time spent waiting here.
   */
  async next(): Promise<Batch | null> {
    const started = performance.now();
    if (this.position >= this.batchesPerEpoch) {
      this.epoch += 1;
      this.position = 0;
      if (!this.infinite) return null;
    }
    let head = this.queue[0];
    if (!head || head.epoch !== this.epoch || head.position !== this.position) {
      this.queue.length = 0;
      head = this.startBatch(this.epoch, this.position);
      this.queue.push(head);
    }
    // Keep the workers busy with the batches that follow while this one completes.
    if (this.pool) {
      let last = this.queue[this.queue.length - 1]!;
      while (this.queue.length < 1 + this.workers * this.prefetchFactor) {
        const next = this.following(last.epoch, last.position);
        if (!next) break;
        last = this.startBatch(next[0], next[1]);
        this.queue.push(last);
      }
    }
    const { indices, results } = await head.samples;
    this.queue.shift();
    this.position += 1;
    const batch = collate(results, indices);
    batch.dataTime = (performance.now() - started) / 1000;
    return batch;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    for (;;) {
      const batch = await this.next();
      if (batch === null) return;
      yield batch;
    }
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    this.queue.length = 0;
    await this.pool?.close();
  }
}
