import * as fs from 'fs';
import * as path from 'path';
import { definePlugin, iterationBasedOnly, z, type ComponentDefinition, type EventBus, type Hook, type RunnerView } from '@segkit/core';

const { version } = require('../../package.json') as { version: string };

export const checkpointSchema = z.object({
  by_epoch: iterationBasedOnly(),
  /** Save every `interval` iterations (and at the end). */
  interval: z.number().int().positive({ error: 'expected a positive integer' }).default(4000),
  /** Keep only the newest N periodic checkpoints (-1: keep all). */
  max_keep_ckpts: z.number().int().min(-1).default(-1),
  /** Also write `latest.safetensors` (MMCV's `latest.pth` link). */
  save_last: z.boolean().default(true),
  /** Metric name (e.g. 'mIoU', 'mDice') whose best value keeps `best_<metric>_iter_<n>.safetensors`. */
  save_best: z.string().nullable().default(null),
  /** 'greater' (default for m* metrics) or 'less'. */
  rule: z.enum(['greater', 'less']).default('greater'),
  out_dir: z.string().nullable().default(null),
});
type CheckpointOptions = z.infer<typeof checkpointSchema>;

declare module '@segkit/core' {
  interface HookOptionsMap {
    CheckpointHook: Partial<Omit<CheckpointOptions, 'by_epoch'>> & { by_epoch?: false };
  }
}

/**
 * MMCV's CheckpointHook (by_epoch false): `iter_<n>.safetensors` every `interval` iterations and at
 * the end, `latest.safetensors`, at most `max_keep_ckpts` periodic files, and with `save_best` the best
 * checkpoint by a metric of the `eval:end` events.
 */
export class CheckpointHook implements Hook {
  readonly name = 'CheckpointHook';
  readonly priority = 50;
  private readonly saved: string[] = [];
  private best: { metric: string; value: number; iter: number; file: string } | undefined;
  private runner: RunnerView | undefined;

  constructor(private readonly options: CheckpointOptions) {}

  private dir(runner: RunnerView): string {
    return this.options.out_dir ? path.resolve(this.options.out_dir) : runner.workDir;
  }

  attach(bus: EventBus, runner: RunnerView): void {
    this.runner = runner;
    if (this.options.save_best) bus.subscribe(this.name, 'eval:end', (event) => this.considerBest(bus, event.iter, event.metrics));
  }

  private save(bus: EventBus, runner: RunnerView, file: string, best?: string): void {
    runner.saveCheckpoint(file, this.best ? { best: { metric: this.best.metric, value: this.best.value, iter: this.best.iter } } : {});
    bus.emit({ type: 'checkpoint:saved', iter: runner.iter, path: file, ...(best ? { best } : {}) });
  }

  afterTrainIter(runner: RunnerView): void {
    const atEnd = runner.iter === runner.maxIters;
    if (runner.iter % this.options.interval !== 0 && !atEnd) return;
    const dir = this.dir(runner);
    const file = path.join(dir, `iter_${runner.iter}.safetensors`);
    this.save(runner.bus, runner, file);
    if (this.options.save_last) fs.copyFileSync(file, path.join(dir, 'latest.safetensors'));
    this.saved.push(file);
    if (this.options.max_keep_ckpts > 0) {
      while (this.saved.length > this.options.max_keep_ckpts) fs.rmSync(this.saved.shift()!, { force: true });
    }
  }

  private considerBest(bus: EventBus, iter: number, metrics: Readonly<Record<string, number>>): void {
    const metric = this.options.save_best!;
    const value = metrics[metric];
    if (value === undefined) {
      const available = Object.keys(metrics).filter((k) => !k.includes('.'));
      throw new Error(`checkpoint_config.save_best: metric '${metric}' is not in the evaluation results (${available.join(', ')})`);
    }
    const better = !this.best || (this.options.rule === 'greater' ? value > this.best.value : value < this.best.value);
    if (!better || !this.runner) return;
    const file = path.join(this.dir(this.runner), `best_${metric}_iter_${iter}.safetensors`);
    if (this.best) fs.rmSync(this.best.file, { force: true });
    this.best = { metric, value, iter, file };
    this.save(bus, this.runner, file, metric);
  }
}

export const checkpointDefinition: ComponentDefinition<CheckpointOptions, CheckpointHook> = {
  type: 'CheckpointHook',
  schema: checkpointSchema,
  create: (options) => new CheckpointHook(options),
  description: 'periodic / latest / best checkpoints as safetensors',
};

export const plugin = definePlugin({ name: '@segkit/hook-checkpoint', version, components: { hooks: [checkpointDefinition] } });
