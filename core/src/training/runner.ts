import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { Subscription } from 'rxjs';
import type { Kernel } from '../plugin-system/kernel';
import type { LoadedConfig } from '../config/loader';
import type { Dataset, EvaluationResult, InferenceOptions, LrScheduler, Metric, Optimizer, RunnerView, Segmentor } from '../components';
import type { EventBus, EventOf, GroupLr } from '../bus';
import { SegkitError } from '../errors';
import { DataLoader, batchToTensors, type Batch } from '../data';
import { readLossValues } from '../losses';
import { forwardBackward } from './step';
import { saveCheckpoint, type CheckpointMeta, type LoadedCheckpoint } from '../checkpoint/segkit-checkpoint';
import { checkpointFormatOf, datasetMeta, readResumeCheckpoint, saveSegkitTorchCheckpoint, type CheckpointFormat } from '../checkpoint/segkit-pth';
import { loadCheckpoint, loadPretrainedWeights } from '../checkpoint';
import { evaluateSegmentor } from '../evaluation/evaluate';
import { startProgress } from '../tools/progress';
import { Hook, sortByPriority, type HookPoint } from './hook';
import { seedEverything, seedIteration } from './seed';
import { parseRunSpec, type RunSpec } from '../config/run-spec';
import { buildOptimizer } from './build';
import { lockWorkDir, uniqueTimestamp } from './work-dir-lock';
import { makeDirectory, writeFileOrExplain } from '../os-errors';
import { SINGLE_PROCESS, setProcessGroup, type Communicator } from '../distributed/communicator';
import { allreduceGradients, averageScalars, broadcastModel } from '../distributed/data-parallel';

export interface TrainOptions {
  kernel: Kernel;
  config: LoadedConfig;
  /** Overrides `config.work_dir`; default `work_dirs/<config name>`. */
  workDir?: string;
  resumeFrom?: string;
  loadFrom?: string;
  seed?: number;
  /** Run validation only when hooks ask for it (default) — `noValidate` drops the EvalHook. */
  noValidate?: boolean;
  /** Unknown top-level config keys are errors instead of warnings. */
  strict?: boolean;
  /**
   * Data-parallel training (`--launcher mpi|slurm`): this process's group. Every rank runs this runner
   * on its shard of the data; gradients are averaged so every rank takes the same step; rank 0 writes.
   */
  communicator?: Communicator;
}

function timestampNow(): string {
  const d = new Date();
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}_${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
}

/** Batches in a row with a non-finite loss after which `nan_policy: 'skip'` gives up. */
const MAX_CONSECUTIVE_SKIPS = 10;

/** Param-group lrs for the log: every group, labelled by the custom key that set it. */
function groupLrs(optimizer: Optimizer): GroupLr[] {
  return optimizer.paramGroups.map((group, index) => ({ group: index, key: group.key, lr: group.lr }));
}

export interface TrainResult {
  workDir: string;
  iter: number;
  lastCheckpoint?: string;
  lastEvaluation?: EvaluationResult;
}

/**
 * MMCV's IterBasedRunner: data → forward → losses → backward → optimizer step → LR schedule. Hooks act
 * at the lifecycle points of `Hook` (awaited in priority order); every point is also published on the
 * kernel's event bus for observers.
 */
export class IterBasedRunner implements RunnerView {
  readonly workDir: string;
  readonly maxIters: number;
  readonly model: Segmentor;
  readonly optimizer: Optimizer;
  /** Start time of the run (log file names), made unique in the work dir when the run starts. */
  timestamp = timestampNow();
  readonly seed: number;
  iter = 0;
  private readonly spec: RunSpec;
  private skippedBatches = 0;
  private readonly scheduler: LrScheduler | undefined;
  private trainLoader: DataLoader | undefined;
  private valDataset: Dataset | undefined;
  private readonly hooks: Hook[];
  private lastEvaluation: EvaluationResult | undefined;
  private lastCheckpoint: string | undefined;
  /** The process group (one process unless launched data-parallel). */
  readonly group: Communicator;
  private allreduceSeconds = 0;
  private allreduceSteps = 0;

  constructor(
    private readonly kernel: Kernel,
    readonly config: LoadedConfig,
    private readonly options: TrainOptions,
  ) {
    this.spec = parseRunSpec(config, { strict: options.strict, noValidate: options.noValidate, logger: { warn: (m) => kernel.warnOnce(m), info: (m) => kernel.logger.info(m) } });
    this.maxIters = this.spec.maxIters;
    const configName = config.filename ? path.basename(config.filename).replace(/\.(ts|js|json|cjs|mjs|py)$/, '') : 'run';
    this.workDir = path.resolve(options.workDir ?? this.spec.workDir ?? path.join('work_dirs', configName));
    this.seed = options.seed ?? this.spec.seed ?? 0;
    this.group = options.communicator ?? SINGLE_PROCESS;
    // SyncBN layers take their statistics over this group.
    setProcessGroup(this.group);
    seedEverything(this.seed);
    this.model = kernel.build('segmentors', this.spec.model, { path: 'model' });
    this.model.train();
    this.optimizer = buildOptimizer(kernel, this.model, this.spec.optimizer);
    this.scheduler = this.spec.lrScheduler ? kernel.build('lrSchedulers', this.spec.lrScheduler, { path: 'lr_config', parent: { maxIters: this.maxIters } }) : undefined;
    const hooks = this.spec.hooks.map(({ cfg, path: at }) => kernel.build('hooks', cfg, { path: at, parent: { logInterval: this.spec.logInterval } }));
    this.hooks = sortByPriority(this.group.rank === 0 ? hooks : hooks.filter((hook) => !hook.mainRankOnly));
  }

  get bus(): EventBus {
    return this.kernel.bus;
  }

  /** Starts the training loader (and its worker threads): only inside `run`'s try/finally, which closes it. */
  private startTrainLoader(): DataLoader {
    const { data } = this.spec;
    this.trainLoader = DataLoader.fromConfig(this.kernel, data.train, {
      batchSize: data.samplesPerGpu,
      workers: data.workersPerGpu,
      shuffle: true,
      dropLast: true,
      infinite: true,
      seed: this.seed,
      plugins: this.spec.plugins,
      path: 'data.train',
      ...(this.group.size > 1 ? { shard: { rank: this.group.rank, size: this.group.size } } : {}),
    });
    return this.trainLoader;
  }

  private validationDataset(): Dataset {
    if (!this.valDataset) {
      const { val } = this.spec.data;
      if (!val) throw new SegkitError('data.val: evaluation needs a validation dataset config', 'data.val');
      this.valDataset = this.kernel.build('datasets', val, { path: 'data.val' });
    }
    return this.valDataset;
  }

  /** Evaluates on the validation set, publishes the tables (`log`) and `eval:end`, then runs the hooks' `afterVal`. */
  async evaluate(metrics: readonly Metric[]): Promise<EvaluationResult> {
    const dataset = this.validationDataset();
    // Images done and ETA on the terminal (or plain lines in CI logs) while the validation set runs.
    const progress = startProgress({ label: `evaluation at iter ${this.iter}`, total: dataset.length, unit: 'images', quiet: this.group.rank !== 0 });
    let result: EvaluationResult;
    try {
      result = await evaluateSegmentor(this.model, dataset, {
        testCfg: (this.spec.model.test_cfg ?? {}) as InferenceOptions,
        metrics,
        onProgress: (done) => progress.update(done),
        communicator: this.group,
      });
    } finally {
      progress.stop();
    }
    this.lastEvaluation = result;
    this.bus.emit({ type: 'log', level: 'info', message: result.text });
    this.bus.emit({ type: 'eval:end', iter: this.iter, metrics: result.metrics, classTable: result.classTable });
    await this.callHooks('afterVal', result);
    return result;
  }

  async saveCheckpoint(file: string, extra: { best?: CheckpointMeta['best']; format?: CheckpointFormat } = {}): Promise<void> {
    // Every rank holds the same weights; only rank 0 writes (MMCV's master_only).
    if (this.group.rank !== 0) return;
    const { format = checkpointFormatOf(file), ...metaExtra } = extra;
    const meta: CheckpointMeta = {
      iter: this.iter,
      config: { ...this.config },
      dataLoader: this.trainLoader?.state(),
      timestamp: this.timestamp,
      segkitVersion: (require('../../../package.json') as { version: string }).version,
      hooks: {},
      ...metaExtra,
    };
    await this.callHooks('beforeSaveCheckpoint', meta);
    if (format === 'pth') await saveSegkitTorchCheckpoint(file, this.model, this.optimizer, meta, datasetMeta(this.trainLoader?.dataset));
    // Classes and palette travel with the weights, so inference needs no dataset folder (as the .pth's meta).
    else await saveCheckpoint(file, this.model, this.optimizer, { ...meta, ...datasetMeta(this.trainLoader?.dataset) });
    this.lastCheckpoint = file;
    this.bus.emit({ type: 'checkpoint:saved', iter: this.iter, path: file, ...(extra.best ? { best: extra.best.metric } : {}) });
  }

  /** Restores weights, optimizer state, iteration, LR position, data order and hook state (`--resume-from`). */
  private async resume(file: string, checkpoint: LoadedCheckpoint, loader: DataLoader): Promise<void> {
    try {
      this.model.loadStateDict(checkpoint.weights, { source: file });
      if (!checkpoint.optimizerState) throw new SegkitError(`${file}: has no optimizer state; use --load-from to start from its weights`);
      await this.optimizer.loadStateDict(checkpoint.optimizerState);
      const note = checkpoint.meta.dataLoader ? loader.loadState(checkpoint.meta.dataLoader as never) : undefined;
      if (note) this.kernel.logger.warn(note);
      this.iter = checkpoint.meta.iter;
    } finally {
      checkpoint.dispose();
    }
    await this.callHooks('afterLoadCheckpoint', checkpoint.meta);
    this.kernel.logger.info(`resumed from ${file} at iteration ${this.iter}`);
  }

  /**
   * Loads weights only (`--load-from` / `load_from`), non-strict like MMCV's load_checkpoint: a segkit
   * `.safetensors`, a PyTorch / MMSegmentation `.pth`, or a model-zoo name or URL (from the local cache).
   */
  private async loadWeights(spec: string): Promise<void> {
    await loadCheckpoint(this.model, spec, { strict: false, logger: this.kernel.logger });
  }

  /**
   * Calls one lifecycle point of every hook, in priority order. A SegkitError stops the run (a user
   * mistake, e.g. a save_best metric that is never computed); other errors are reported through the bus
   * (repeats collapsed, a hook failing too often switched off) and training goes on. At `onException` and
   * `afterRun` nothing is re-thrown: the run is ending anyway and every hook must get its turn.
   */
  private async callHooks<P extends HookPoint>(point: P, ...args: HookArgs<P>): Promise<void> {
    const ending = point === 'onException' || point === 'afterRun';
    for (const hook of this.hooks) {
      const method = hook[point] as unknown as (runner: RunnerView, ...rest: HookArgs<P>) => void | Promise<void>;
      if (method === (Hook.prototype[point] as unknown) || this.bus.isDisabled(hook.name)) continue;
      try {
        await method.call(hook, this, ...args);
        this.bus.recordSuccess(hook.name);
      } catch (error) {
        if (error instanceof SegkitError && !ending) throw error;
        this.bus.reportHookError(hook.name, point, error);
      }
    }
  }

  /** Core's own observers: `log` and `hook:error` reach the kernel's logger whatever hooks are configured. */
  private routeToLogger(): Subscription {
    const logger = this.kernel.logger;
    const subscriptions = new Subscription();
    subscriptions.add(this.bus.on('log').subscribe((event) => (event.level === 'warn' ? logger.warn(event.message) : logger.info(event.message))));
    subscriptions.add(this.bus.on('hook:error').subscribe((event) => logger.warn(describeHookError(event))));
    return subscriptions;
  }

  /**
   * One optimisation step; returns the logged loss values, or null when the loss was not finite and the
   * batch was skipped (`nan_policy: 'skip'`). The labels are checked first (the losses' `checkLabels`, an
   * asynchronous readback: the gradient tape below cannot wait for one). The loss terms are read (one asynchronous readback) before the
   * optimizer step, so a NaN never reaches the weights. Everything tensor-valued is freed here.
   */
  private async step(images: tf.Tensor4D, labels: tf.Tensor3D): Promise<Record<string, number> | null> {
    await this.model.checkLabels?.(labels);
    const { value, grads: localGrads, logTensors } = forwardBackward(this.model, images, labels);
    let grads = localGrads;
    try {
      // Data-parallel: the logged values are the mean over the ranks (MMSegmentation's parse_losses), and
      // a non-finite loss on any rank is non-finite on all of them, so every rank skips or steps alike.
      const losses = averageScalars(this.group, await readLossValues(logTensors));
      const bad = Object.entries(losses).filter(([, v]) => !Number.isFinite(v));
      if (bad.length === 0) {
        if (this.group.size > 1) {
          const order = this.model.parameters().filter((variable) => variable.trainable).map((variable) => variable.name);
          const synced = await allreduceGradients(this.group, grads, order);
          grads = synced.grads;
          this.allreduceSeconds += synced.allreduceSeconds;
          this.allreduceSteps += 1;
        }
        this.optimizer.step(grads);
        this.skippedBatches = 0;
        return losses;
      }
      const terms = bad.map(([key, v]) => `${key}: ${v}`).join(', ');
      if (this.spec.nanPolicy === 'stop') {
        throw new SegkitError(
          `iteration ${this.iter + 1}: the loss is not finite (${terms}); training stopped before the optimizer step, so no checkpoint holds these values (lower the lr, check the data, or set nan_policy: 'skip')`,
          'nan_policy',
        );
      }
      this.skippedBatches += 1;
      if (this.skippedBatches >= MAX_CONSECUTIVE_SKIPS) {
        throw new SegkitError(`iteration ${this.iter + 1}: the loss was not finite for ${this.skippedBatches} batches in a row (${terms}); training stopped`, 'nan_policy');
      }
      this.bus.emit({ type: 'log', level: 'warn', message: `iteration ${this.iter + 1}: the loss is not finite (${terms}); batch skipped (nan_policy: 'skip', ${this.skippedBatches} in a row)` });
      return null;
    } finally {
      tf.dispose([value, ...Object.values(grads), ...Object.values(logTensors)]);
    }
  }

  async run(): Promise<TrainResult> {
    const observers = this.routeToLogger();
    let batches: AsyncIterator<Batch> | undefined;
    let unlock: (() => void) | undefined;
    try {
      // Rank 0 owns the work dir (logs, checkpoints); the other ranks never write to it.
      if (this.group.rank === 0) {
        makeDirectory(this.workDir, 'work_dir');
        unlock = lockWorkDir(this.workDir, (message) => this.kernel.logger.warn(message));
        this.timestamp = uniqueTimestamp(this.workDir, this.timestamp);
      }
      const loader = this.startTrainLoader();
      const resumeFrom = this.options.resumeFrom ?? this.spec.resumeFrom ?? undefined;
      const loadFrom = this.options.loadFrom ?? this.spec.loadFrom ?? undefined;
      // MMSegmentation's order: pretrained weights at model init, then load_from over them; a resume replaces both.
      const resumable = resumeFrom ? await readResumeCheckpoint(resumeFrom) : null;
      if (resumeFrom && !resumable) {
        this.kernel.logger.warn(`${resumeFrom}: only checkpoints segkit's runner saved (.safetensors, or .pth with checkpoint_config.format 'pth') carry the optimizer, iteration and data order; loading its weights and starting at iteration 0`);
        await this.loadWeights(resumeFrom);
      } else if (resumeFrom && resumable) await this.resume(resumeFrom, resumable, loader);
      else {
        await loadPretrainedWeights(this.model, this.spec.model, { logger: this.kernel.logger });
        if (loadFrom) await this.loadWeights(loadFrom);
      }
      if (this.group.size > 1) {
        // Every replica starts from rank 0's weights (DDP's initial broadcast).
        await broadcastModel(this.group, this.model);
        const { samplesPerGpu } = this.spec.data;
        this.kernel.logger.info(`data-parallel over ${this.group.size} processes (${this.group.description}): samples_per_gpu ${samplesPerGpu} per process, ${samplesPerGpu * this.group.size} per step`);
      }
      for (const hook of this.hooks) {
        const subscription = hook.observe(this.bus, this);
        if (subscription) observers.add(subscription);
      }
      const configDump = { ...this.config };
      if (this.group.rank === 0) writeFileOrExplain(path.join(this.workDir, `${this.timestamp}.config.json`), JSON.stringify(configDump, null, 2), 'work_dir');
      this.bus.emit({ type: 'run:start', maxIters: this.maxIters, startIter: this.iter, workDir: this.workDir, config: configDump, backend: this.kernel.backend });
      batches = loader[Symbol.asyncIterator]();
      await this.callHooks('beforeRun');
      while (this.iter < this.maxIters) {
        this.scheduler?.apply(this.optimizer, this.iter);
        const started = performance.now();
        const next = await batches.next();
        if (next.done) throw new Error('the training data loader ended; it should be endless');
        const batch = next.value;
        this.bus.emit({ type: 'iter:start', iter: this.iter });
        await this.callHooks('beforeTrainIter');
        seedIteration(this.seed, this.iter);
        const { images, labels } = batchToTensors(batch);
        if (!labels) throw new SegkitError('data.train: the pipeline produced no gt_semantic_seg (is LoadAnnotations / Collect missing?)', 'data.train.pipeline');
        let losses: Record<string, number> | null;
        try {
          losses = await this.step(images, labels);
        } finally {
          tf.dispose([images, labels]);
        }
        if (losses === null) continue;
        this.iter += 1;
        const memory = tf.memory();
        this.bus.emit({
          type: 'iter:end',
          iter: this.iter,
          maxIters: this.maxIters,
          losses,
          lrs: groupLrs(this.optimizer),
          dataTime: batch.dataTime,
          stepTime: (performance.now() - started) / 1000,
          memory: { numTensors: memory.numTensors, numBytes: memory.numBytes, rssMB: Math.round(process.memoryUsage().rss / 2 ** 20) },
        });
        await this.callHooks('afterTrainIter');
      }
      if (this.allreduceSteps > 0) {
        this.kernel.logger.info(`gradient allreduce over ${this.group.size} processes: ${((this.allreduceSeconds / this.allreduceSteps) * 1000).toFixed(1)} ms per iteration (mean of ${this.allreduceSteps})`);
      }
      this.bus.emit({ type: 'run:end', iter: this.iter, workDir: this.workDir });
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      this.bus.emit({ type: 'run:error', iter: this.iter, error: err });
      await this.callHooks('onException', err);
      throw error;
    } finally {
      await batches?.return?.();
      await this.trainLoader?.close();
      await this.callHooks('afterRun');
      this.bus.flushRepeatedErrors();
      observers.unsubscribe();
      unlock?.();
    }
    return { workDir: this.workDir, iter: this.iter, lastCheckpoint: this.lastCheckpoint, lastEvaluation: this.lastEvaluation };
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}

type HookArgs<P extends HookPoint> = Hook[P] extends (runner: RunnerView, ...rest: infer A) => unknown ? A : never;

function describeHookError(event: EventOf<'hook:error'>): string {
  return event.repeats
    ? `hook ${event.hook} failed ${event.repeats} more time${event.repeats === 1 ? '' : 's'} on ${event.event} with the same error: ${event.error.message}`
    : `hook ${event.hook} failed on ${event.event}: ${event.error.message}`;
}

/** Builds a runner from a config and trains it to `runner.max_iters`. */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const runner = new IterBasedRunner(options.kernel, options.config, options);
  try {
    return await runner.run();
  } finally {
    runner.dispose();
  }
}
