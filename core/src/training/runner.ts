import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { Subscription } from 'rxjs';
import type { Kernel } from '../plugin-system/kernel';
import type { LoadedConfig } from '../config/loader';
import type { Dataset, EvaluationResult, LrScheduler, Metric, Optimizer, RunnerView, Segmentor } from '../components';
import type { EventBus, EventOf, GroupLr } from '../bus';
import { SegkitError } from '../errors';
import { DataLoader, batchToTensors, type Batch } from '../data';
import { parseLossTensors, readLossValues } from '../losses';
import { saveCheckpoint, type CheckpointMeta, type LoadedCheckpoint } from '../checkpoint/segkit-checkpoint';
import { checkpointFormatOf, datasetMeta, readResumeCheckpoint, saveSegkitTorchCheckpoint, type CheckpointFormat } from '../checkpoint/segkit-pth';
import { loadCheckpoint, loadPretrainedWeights } from '../checkpoint';
import { evaluateSegmentor } from '../evaluation/evaluate';
import { Hook, type HookPoint } from './hook';
import { buildHooks } from './hooks';
import { seedEverything, seedIteration } from './seed';
import { buildOptimizer, buildLrScheduler, configSection as section } from './build';

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
}

function timestampNow(): string {
  const d = new Date();
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}_${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
}


function maxItersOf(config: LoadedConfig): number {
  const runner = section<{ type?: string; max_iters?: unknown }>(config, 'runner', true)!;
  if (runner.type !== undefined && runner.type !== 'IterBasedRunner') {
    throw new SegkitError(`runner.type: segkit trains by iterations; expected 'IterBasedRunner', got ${JSON.stringify(runner.type)}`, 'runner.type');
  }
  if (!Number.isInteger(runner.max_iters) || (runner.max_iters as number) < 1) {
    throw new SegkitError(`runner.max_iters: expected a positive integer, got ${JSON.stringify(runner.max_iters)}`, 'runner.max_iters');
  }
  return runner.max_iters as number;
}

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
  readonly timestamp = timestampNow();
  readonly seed: number;
  iter = 0;
  private readonly scheduler: LrScheduler | undefined;
  private trainLoader: DataLoader | undefined;
  private valDataset: Dataset | undefined;
  private readonly hooks: Hook[];
  private lastEvaluation: EvaluationResult | undefined;
  private lastCheckpoint: string | undefined;

  constructor(
    private readonly kernel: Kernel,
    readonly config: LoadedConfig,
    private readonly options: TrainOptions,
  ) {
    this.maxIters = maxItersOf(config);
    const configName = config.filename ? path.basename(config.filename).replace(/\.(ts|js|json|cjs|mjs|py)$/, '') : 'run';
    this.workDir = path.resolve(options.workDir ?? (config.work_dir as string | undefined) ?? path.join('work_dirs', configName));
    this.seed = options.seed ?? (typeof config.seed === 'number' ? config.seed : 0);
    seedEverything(this.seed);
    this.model = kernel.build('segmentors', section(config, 'model', true), { path: 'model' });
    this.model.train();
    this.optimizer = buildOptimizer(kernel, this.model, section(config, 'optimizer', true));
    this.scheduler = buildLrScheduler(kernel, config, this.maxIters);
    this.hooks = buildHooks(kernel, config, { noValidate: options.noValidate ?? false });
  }

  get bus(): EventBus {
    return this.kernel.bus;
  }

  /** Starts the training loader (and its worker threads): only inside `run`'s try/finally, which closes it. */
  private startTrainLoader(): DataLoader {
    const data = section<Record<string, unknown>>(this.config, 'data', true)!;
    this.trainLoader = DataLoader.fromConfig(this.kernel, data.train, {
      batchSize: (data.samples_per_gpu as number | undefined) ?? 2,
      workers: (data.workers_per_gpu as number | undefined) ?? 0,
      shuffle: true,
      dropLast: true,
      infinite: true,
      seed: this.seed,
      plugins: (this.config.plugins as string[] | undefined) ?? [],
      path: 'data.train',
    });
    return this.trainLoader;
  }

  private validationDataset(): Dataset {
    if (!this.valDataset) {
      const data = section<Record<string, unknown>>(this.config, 'data', true)!;
      if (!data.val) throw new SegkitError('data.val: evaluation needs a validation dataset config', 'data.val');
      this.valDataset = this.kernel.build('datasets', data.val, { path: 'data.val' });
    }
    return this.valDataset;
  }

  /** Evaluates on the validation set, publishes the tables (`log`) and `eval:end`, then runs the hooks' `afterVal`. */
  async evaluate(metrics: readonly Metric[]): Promise<EvaluationResult> {
    const model = section<Record<string, unknown>>(this.config, 'model', true)!;
    const result = await evaluateSegmentor(this.model, this.validationDataset(), { testCfg: (model.test_cfg ?? {}) as never, metrics });
    this.lastEvaluation = result;
    this.bus.emit({ type: 'log', level: 'info', message: result.text });
    this.bus.emit({ type: 'eval:end', iter: this.iter, metrics: result.metrics, classTable: result.classTable });
    await this.callHooks('afterVal', result);
    return result;
  }

  async saveCheckpoint(file: string, extra: { best?: CheckpointMeta['best']; format?: CheckpointFormat } = {}): Promise<void> {
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
    else await saveCheckpoint(file, this.model, this.optimizer, meta);
    this.lastCheckpoint = file;
    this.bus.emit({ type: 'checkpoint:saved', iter: this.iter, path: file, ...(extra.best ? { best: extra.best.metric } : {}) });
  }

  /** Restores weights, optimizer state, iteration, LR position, data order and hook state (`--resume-from`). */
  private async resume(file: string, checkpoint: LoadedCheckpoint, loader: DataLoader): Promise<void> {
    try {
      this.model.loadStateDict(checkpoint.weights, { source: file });
      if (!checkpoint.optimizerState) throw new SegkitError(`${file}: has no optimizer state; use --load-from to start from its weights`);
      this.optimizer.loadStateDict(checkpoint.optimizerState);
      if (checkpoint.meta.dataLoader) loader.loadState(checkpoint.meta.dataLoader as never);
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

  /** One optimisation step; returns the logged loss values. Everything tensor-valued is freed here. */
  private async step(images: tf.Tensor4D, labels: tf.Tensor3D): Promise<Record<string, number>> {
    let logTensors: Record<string, tf.Scalar> = {};
    const trainable = this.model.parameters().filter((variable) => variable.trainable);
    const { value, grads } = tf.variableGrads(() => {
      const parsed = parseLossTensors(this.model.forwardTrain(images, labels));
      logTensors = Object.fromEntries(Object.entries(parsed.logTensors).map(([key, tensor]) => [key, tf.keep(tf.clone(tensor))]));
      return parsed.loss;
    }, trainable);
    try {
      this.optimizer.step(grads);
    } finally {
      tf.dispose([value, ...Object.values(grads)]);
    }
    try {
      return await readLossValues(logTensors);
    } finally {
      tf.dispose(Object.values(logTensors));
    }
  }

  async run(): Promise<TrainResult> {
    const observers = this.routeToLogger();
    let batches: AsyncIterator<Batch> | undefined;
    try {
      fs.mkdirSync(this.workDir, { recursive: true });
      const loader = this.startTrainLoader();
      const resumeFrom = this.options.resumeFrom ?? (this.config.resume_from as string | null | undefined) ?? undefined;
      const loadFrom = this.options.loadFrom ?? (this.config.load_from as string | null | undefined) ?? undefined;
      // MMSegmentation's order: pretrained weights at model init, then load_from over them; a resume replaces both.
      const resumable = resumeFrom ? await readResumeCheckpoint(resumeFrom) : null;
      if (resumeFrom && !resumable) {
        this.kernel.logger.warn(`${resumeFrom}: only checkpoints segkit's runner saved (.safetensors, or .pth with checkpoint_config.format 'pth') carry the optimizer, iteration and data order; loading its weights and starting at iteration 0`);
        await this.loadWeights(resumeFrom);
      } else if (resumeFrom && resumable) await this.resume(resumeFrom, resumable, loader);
      else {
        await loadPretrainedWeights(this.model, section<Record<string, unknown>>(this.config, 'model', true)!, { logger: this.kernel.logger });
        if (loadFrom) await this.loadWeights(loadFrom);
      }
      for (const hook of this.hooks) {
        const subscription = hook.observe(this.bus, this);
        if (subscription) observers.add(subscription);
      }
      const configDump = { ...this.config };
      fs.writeFileSync(path.join(this.workDir, `${this.timestamp}.config.json`), JSON.stringify(configDump, null, 2));
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
        let losses: Record<string, number>;
        try {
          losses = await this.step(images, labels);
        } finally {
          tf.dispose([images, labels]);
        }
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
