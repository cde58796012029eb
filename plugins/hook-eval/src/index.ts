import { definePlugin, iterationBasedOnly, z, type ComponentDefinition, type Hook, type RunnerView } from '@segkit/core';

const { version } = require('../../package.json') as { version: string };

const METRICS = ['mIoU', 'mDice', 'mFscore'] as const;

export const evalSchema = z.object({
  by_epoch: iterationBasedOnly(),
  interval: z.number().int().positive({ error: 'expected a positive integer' }).default(4000),
  metric: z.union([z.enum(METRICS), z.array(z.enum(METRICS)).min(1)], { error: `expected one of ${METRICS.join(', ')} or a list of them` }).default('mIoU'),
  /** Accepted for MMSegmentation configs; segkit always evaluates image by image (pre_eval's memory behaviour). */
  pre_eval: z.boolean().default(true),
  nan_to_num: z.number().nullable().default(null),
  /** Evaluate once before training starts (sanity check of the pipeline and metrics). */
  start: z.boolean().default(false),
});
type EvalOptions = z.infer<typeof evalSchema>;

declare module '@segkit/core' {
  interface HookOptionsMap {
    EvalHook: { by_epoch?: false; interval?: number; metric?: (typeof METRICS)[number] | (typeof METRICS)[number][]; pre_eval?: boolean; nan_to_num?: number | null; start?: boolean };
  }
}

/**
 * MMSegmentation's EvalHook (LOW priority, by_epoch false): every `interval` iterations and at the end,
 * evaluate the validation set and publish the metrics and per-class table as `eval:end`.
 */
export class EvalHook implements Hook {
  readonly name = 'EvalHook';
  readonly priority = 70;
  private readonly metrics: string[];

  constructor(private readonly options: EvalOptions) {
    this.metrics = typeof options.metric === 'string' ? [options.metric] : [...options.metric];
  }

  private async evaluate(runner: RunnerView): Promise<void> {
    const result = await runner.evaluate(this.metrics);
    runner.bus.emit({ type: 'log', level: 'info', message: result.text });
    runner.bus.emit({ type: 'eval:end', iter: runner.iter, metrics: result.metrics, classTable: result.classTable });
  }

  async beforeRun(runner: RunnerView): Promise<void> {
    if (this.options.start) await this.evaluate(runner);
  }

  async afterTrainIter(runner: RunnerView): Promise<void> {
    if (runner.iter % this.options.interval === 0 || runner.iter === runner.maxIters) await this.evaluate(runner);
  }
}

export const evalDefinition: ComponentDefinition<EvalOptions, EvalHook> = {
  type: 'EvalHook',
  schema: evalSchema,
  create: (options) => new EvalHook(options),
  description: 'validation metrics (mIoU, mDice, mFscore) every interval',
};

export const plugin = definePlugin({ name: '@segkit/hook-eval', version, components: { hooks: [evalDefinition] } });
