import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import type { Kernel } from '../kernel';
import type { LoadedConfig } from '../config';
import type {
  Dataset,
  EvaluationResult,
  Hook,
  LrScheduler,
  Optimizer,
  RunnerView,
  Segmentor,
} from '../components';
import type { GroupLr } from '../bus';
import { SegkitError } from '../errors';
import { DataLoader, batchToTensors } from '../data';
import { parseLosses } from '../losses';
import { saveCheckpoint, readCheckpoint, type CheckpointMeta } from './checkpoint';
import { evaluateSegmentor } from './evaluate';
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
 * MMCV's IterBasedRunner: data → forward → losses → backward → optimizer step → LR schedule,
 * with every observation going out on the kernel's event bus and hooks acting at the lifecycle points.
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
  private readonly trainLoader: DataLoader;
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
    const configName = config.filename ? path.basename(config.filename).replace(/\.(ts|js|json|cjs|mjs)$/, '') : 'run';
    this.workDir = path.resolve(options.workDir ?? (config.work_dir as string | undefined) ?? path.join('work_dirs', configName));
    this.seed = options.seed ?? (typeof config.seed === 'number' ? config.seed : 0);
    seedEverything(this.seed);
    this.model = kernel.build<Segmentor>('segmentors', section(config, 'model', true), { path: 'model' });
    this.model.train();
    this.optimizer = buildOptimizer(kernel, this.model, section(config, 'optimizer', true));
    this.scheduler = buildLrScheduler(kernel, config, this.maxIters);
    const data = section<Record<string, unknown>>(config, 'data', true)!;
    this.trainLoader = DataLoader.fromConfig(kernel, data.train, {
      batchSize: (data.samples_per_gpu as number | undefined) ?? 2,
      workers: (data.workers_per_gpu as number | undefined) ?? 0,
      shuffle: true,
      dropLast: true,
      infinite: true,
      seed: this.seed,
      plugins: (config.plugins as string[] | undefined) ?? [],
      path: 'data.train',
    });
    this.hooks = buildHooks(kernel, config, { noValidate: options.noValidate ?? false });
  }

  get bus() {
    return this.kernel.bus;
  }

  private validationDataset(): Dataset {
    if (!this.valDataset) {
      const data = section<Record<string, unknown>>(this.config, 'data', true)!;
      if (!data.val) throw new SegkitError('data.val: evaluation needs a validation dataset config', 'data.val');
      this.valDataset = this.kernel.build<Dataset>('datasets', data.val, { path: 'data.val' });
    }
    return this.valDataset;
  }

  async evaluate(metrics: readonly string[]): Promise<EvaluationResult> {
    const model = section<Record<string, unknown>>(this.config, 'model', true)!;
    const result = await evaluateSegmentor(this.model, this.validationDataset(), { testCfg: (model.test_cfg ?? {}) as never, metrics });
    this.lastEvaluation = result;
    return result;
  }

  saveCheckpoint(file: string, extra: { best?: CheckpointMeta['best'] } = {}): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    saveCheckpoint(file, this.model, this.optimizer, {
      iter: this.iter,
      config: { ...this.config },
      dataLoader: this.trainLoader.state(),
      timestamp: this.timestamp,
      segkitVersion: (require('../../../package.json') as { version: string }).version,
      ...extra,
    });
    this.lastCheckpoint = file;
  }

  /** Restores weights, optimizer state, iteration, LR position and data order (`--resume-from`). */
  private resume(file: string): void {
    const checkpoint = readCheckpoint(file);
    try {
      this.model.loadStateDict(checkpoint.weights, { source: file });
      if (!checkpoint.optimizerState) throw new SegkitError(`${file}: has no optimizer state; use --load-from to start from its weights`);
      this.optimizer.loadStateDict(checkpoint.optimizerState);
      if (checkpoint.meta.dataLoader) this.trainLoader.loadState(checkpoint.meta.dataLoader as never);
      this.iter = checkpoint.meta.iter;
    } finally {
      checkpoint.dispose();
    }
    this.kernel.logger.info(`resumed from ${file} at iteration ${this.iter}`);
  }

  /** Loads weights only (`--load-from` / `load_from`), non-strict like MMCV's load_checkpoint. */
  private loadWeights(file: string): void {
    const checkpoint = readCheckpoint(file);
    try {
      const { missingKeys, unexpectedKeys } = this.model.loadStateDict(checkpoint.weights, { strict: false, source: file });
      if (missingKeys.length) this.kernel.warnOnce(`${file}: missing keys in the checkpoint: ${missingKeys.slice(0, 5).join(', ')}${missingKeys.length > 5 ? ', ...' : ''}`);
      if (unexpectedKeys.length) this.kernel.warnOnce(`${file}: unexpected keys in the checkpoint: ${unexpectedKeys.slice(0, 5).join(', ')}${unexpectedKeys.length > 5 ? ', ...' : ''}`);
    } finally {
      checkpoint.dispose();
    }
    this.kernel.logger.info(`loaded weights from ${file}`);
  }

  private async runHooks(point: 'beforeRun' | 'afterTrainIter' | 'afterRun'): Promise<void> {
    for (const hook of this.hooks) {
      const action = hook[point];
      if (!action) continue;
      try {
        await action.call(hook, this);
      } catch (error) {
        // A user error in a hook (bad metric name, ...) stops the run; anything else is reported and training goes on.
        if (error instanceof SegkitError) throw error;
        this.bus.reportHookError(hook.name, point, error);
      }
    }
  }

  /** One optimisation step; returns the logged loss values. Everything tensor-valued is freed here. */
  private step(images: tf.Tensor4D, labels: tf.Tensor3D): Record<string, number> {
    let logVars: Record<string, number> = {};
    const trainable = this.model.parameters().filter((variable) => variable.trainable);
    const { value, grads } = tf.variableGrads(() => {
      const parsed = parseLosses(this.model.forwardTrain(images, labels));
      logVars = parsed.logVars;
      return parsed.loss;
    }, trainable);
    this.optimizer.step(grads);
    tf.dispose([value, ...Object.values(grads)]);
    return logVars;
  }

  async run(): Promise<TrainResult> {
    fs.mkdirSync(this.workDir, { recursive: true });
    const resumeFrom = this.options.resumeFrom ?? (this.config.resume_from as string | null | undefined) ?? undefined;
    const loadFrom = this.options.loadFrom ?? (this.config.load_from as string | null | undefined) ?? undefined;
    if (resumeFrom) this.resume(resumeFrom);
    else if (loadFrom) this.loadWeights(loadFrom);
    for (const hook of this.hooks) hook.attach?.(this.bus, this);
    const configDump = { ...this.config };
    fs.writeFileSync(path.join(this.workDir, `${this.timestamp}.config.json`), JSON.stringify(configDump, null, 2));
    this.bus.emit({ type: 'run:start', maxIters: this.maxIters, startIter: this.iter, workDir: this.workDir, config: configDump, backend: this.kernel.backend });
    const batches = this.trainLoader[Symbol.asyncIterator]();
    try {
      await this.runHooks('beforeRun');
      while (this.iter < this.maxIters) {
        this.scheduler?.apply(this.optimizer, this.iter);
        const started = performance.now();
        const next = await batches.next();
        if (next.done) throw new Error('the training data loader ended; it should be endless');
        const batch = next.value;
        this.bus.emit({ type: 'iter:start', iter: this.iter });
        seedIteration(this.seed, this.iter);
        const { images, labels } = batchToTensors(batch);
        if (!labels) throw new SegkitError('data.train: the pipeline produced no gt_semantic_seg (is LoadAnnotations / Collect missing?)', 'data.train.pipeline');
        let losses: Record<string, number>;
        try {
          losses = this.step(images, labels);
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
        await this.runHooks('afterTrainIter');
      }
      await this.runHooks('afterRun');
      this.bus.emit({ type: 'run:end', iter: this.iter, workDir: this.workDir });
    } catch (error) {
      this.bus.emit({ type: 'run:error', iter: this.iter, error: error instanceof Error ? error : new Error(String(error)) });
      throw error;
    } finally {
      await batches.return?.();
      await this.trainLoader.close?.();
      for (const hook of this.hooks) await hook.close?.();
    }
    return { workDir: this.workDir, iter: this.iter, lastCheckpoint: this.lastCheckpoint, lastEvaluation: this.lastEvaluation };
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
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
