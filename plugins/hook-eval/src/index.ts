import { Hook, Priority, definePlugin, iterationBasedOnly, z, type ComponentOf, type Metric, type RunnerView } from '@segkit/core';

const { version } = require('../../package.json') as { version: string };

export const evalSchema = z.object({
  by_epoch: iterationBasedOnly(),
  interval: z.number().int().positive({ error: 'expected a positive integer' }).default(4000),
  /** Names of `metrics` components: core's mIoU, mDice, mFscore, or a plugin's. */
  metric: z.union([z.string(), z.array(z.string()).min(1)], { error: 'expected a metric name (mIoU, mDice, mFscore) or a list of them' }).default('mIoU'),
  /** Accepted for MMSegmentation configs; segkit always evaluates image by image (pre_eval's memory behaviour). */
  pre_eval: z.boolean().default(true),
  nan_to_num: z.number().nullable().default(null),
  /** Evaluate once before training starts (sanity check of the pipeline and metrics). */
  start: z.boolean().default(false),
});
type EvalOptions = z.output<typeof evalSchema>;

declare module '@segkit/core' {
  interface HookOptionsMap {
    EvalHook: Omit<z.input<typeof evalSchema>, 'by_epoch'> & { by_epoch?: false };
  }
}

/**
 * MMSegmentation's EvalHook (LOW priority, by_epoch false): every `interval` iterations and at the end,
 * evaluate the validation set; the runner publishes the tables and metrics and calls the hooks' `afterVal`.
 */
export class EvalHook extends Hook {
  readonly name = 'EvalHook';
  override readonly priority = Priority.LOW;

  constructor(
    private readonly options: EvalOptions,
    private readonly metrics: readonly Metric[],
  ) {
    super();
  }

  override async beforeRun(runner: RunnerView): Promise<void> {
    if (this.options.start) await runner.evaluate(this.metrics);
  }

  override async afterTrainIter(runner: RunnerView): Promise<void> {
    if (runner.iter % this.options.interval === 0 || runner.iter === runner.maxIters) await runner.evaluate(this.metrics);
  }
}

export const evalDefinition: ComponentOf<'hooks', EvalOptions, EvalHook> = {
  type: 'EvalHook',
  schema: evalSchema,
  // Metrics are registry components: a misspelled name is an error with the nearest one before training starts.
  create: (options, ctx) => {
    const names = typeof options.metric === 'string' ? [options.metric] : options.metric;
    const metrics = names.map((type, i) => ctx.build('metrics', { type }, typeof options.metric === 'string' ? 'metric' : `metric.${i}`));
    return new EvalHook(options, metrics);
  },
  description: 'validation metrics (mIoU, mDice, mFscore, or a plugin metric) every interval',
};

export const plugin = definePlugin({ name: '@segkit/hook-eval', version, components: { hooks: [evalDefinition] } });
