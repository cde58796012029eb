import {
  SegkitError,
  definePlugin,
  iterationBasedOnly,
  z,
  type BuildContext,
  type ComponentOf,
  type LrScheduler,
  type LrSchedulerParent,
  type Optimizer,
} from '@segkit/core';

const { version } = require('../../package.json') as { version: string };

// ---------------------------------------------------------------- options shared by every policy

/** MMCV 1.x LrUpdaterHook's options (iteration-based only). */
const commonShape = {
  by_epoch: iterationBasedOnly(),
  warmup: z.enum(['linear', 'constant', 'exp'], { error: "expected 'linear', 'constant', 'exp' or null" }).nullable().default(null),
  warmup_iters: z.number().int({ error: 'expected a non-negative integer' }).min(0, { error: 'expected a non-negative integer' }).default(0),
  warmup_ratio: z.number().gt(0, { error: 'expected a ratio in (0, 1]' }).max(1, { error: 'expected a ratio in (0, 1]' }).default(0.1),
  warmup_by_epoch: iterationBasedOnly(),
};

/** MMCV asserts warmup_iters > 0 as soon as a warm-up is chosen. */
function withWarmupCheck<T extends z.ZodObject>(schema: T): T {
  return schema.superRefine((options, context) => {
    const { warmup, warmup_iters } = options as { warmup: string | null; warmup_iters: number };
    if (warmup !== null && warmup_iters <= 0) {
      context.addIssue({ code: 'custom', path: ['warmup_iters'], message: `expected a positive integer with warmup '${warmup}'`, input: warmup_iters });
    }
  }) as unknown as T;
}

type CommonOptions = z.infer<z.ZodObject<typeof commonShape>>;

/**
 * MMCV 1.x's LrUpdaterHook with by_epoch false: before iteration i, every param group g gets
 * `regular(b_g, i)` from its own initial lr b_g, or during warm-up (i < warmup_iters)
 *   constant: regular · warmup_ratio
 *   linear:   regular · (1 − (1 − i/warmup_iters)·(1 − warmup_ratio))
 *   exp:      regular · warmup_ratio^(1 − i/warmup_iters).
 */
export abstract class IterLrScheduler implements LrScheduler {
  constructor(protected readonly common: CommonOptions) {}

  /** The lr without warm-up (MMCV's get_lr). */
  abstract regularLr(initialLr: number, iter: number): number;

  lrAt(initialLr: number, iter: number): number {
    const regular = this.regularLr(initialLr, iter);
    const { warmup, warmup_iters: warmupIters, warmup_ratio: ratio } = this.common;
    if (warmup === null || iter >= warmupIters) return regular;
    switch (warmup) {
      case 'constant':
        return regular * ratio;
      case 'linear':
        return regular * (1 - (1 - iter / warmupIters) * (1 - ratio));
      case 'exp':
        return regular * ratio ** (1 - iter / warmupIters);
    }
  }

  apply(optimizer: Optimizer, iter: number): void {
    for (const group of optimizer.paramGroups) group.lr = this.lrAt(group.initial_lr, iter);
  }
}

/** The horizon of poly and cosine: runner.max_iters, handed down by the runner (`LrSchedulerParent`). */
function maxItersOf(context: BuildContext<LrSchedulerParent>, type: string): number {
  const maxIters = context.parent.maxIters as number | undefined;
  if (typeof maxIters !== 'number' || !Number.isInteger(maxIters) || maxIters <= 0) {
    throw new SegkitError(
      `${context.path}: the ${type} policy needs the number of iterations (runner.max_iters, handed down as parent.maxIters), got ${maxIters === undefined ? 'none' : String(maxIters)}`,
    );
  }
  return maxIters;
}

/** Fraction of the run done; iterations past the end stay at the end (MMCV never goes there). */
function progress(iter: number, maxIters: number): number {
  return Math.min(iter, maxIters) / maxIters;
}

// ---------------------------------------------------------------- policies

export const polySchema = withWarmupCheck(
  z.object({
    ...commonShape,
    power: z.number().default(1),
    min_lr: z.number().min(0, { error: 'expected a learning rate >= 0' }).default(0),
  }),
);
export type PolyOptions = z.infer<typeof polySchema>;

/** `(b − min_lr)·(1 − i/max_iters)^power + min_lr` (MMCV's PolyLrUpdaterHook). */
export class PolyLr extends IterLrScheduler {
  constructor(private readonly options: PolyOptions, private readonly maxIters: number) {
    super(options);
  }

  regularLr(initialLr: number, iter: number): number {
    const coefficient = (1 - progress(iter, this.maxIters)) ** this.options.power;
    return (initialLr - this.options.min_lr) * coefficient + this.options.min_lr;
  }
}

const positiveInt = z.number().int({ error: 'expected a positive integer' }).gt(0, { error: 'expected a positive integer' });

export const stepSchema = withWarmupCheck(
  z.object({
    ...commonShape,
    step: z.union([positiveInt, z.array(positiveInt)], { error: 'expected a positive integer or a list of positive integers' }),
    gamma: z.number().default(0.1),
    min_lr: z.number().min(0, { error: 'expected a learning rate >= 0' }).nullable().default(null),
  }),
);
export type StepOptions = z.infer<typeof stepSchema>;

/** `b·gamma^k`, k = i // step or the number of milestones passed, clipped below at min_lr (MMCV's StepLrUpdaterHook). */
export class StepLr extends IterLrScheduler {
  constructor(private readonly options: StepOptions) {
    super(options);
  }

  regularLr(initialLr: number, iter: number): number {
    const { step, gamma, min_lr: minLr } = this.options;
    let exponent: number;
    if (typeof step === 'number') exponent = Math.floor(iter / step);
    else {
      const next = step.findIndex((milestone) => iter < milestone);
      exponent = next === -1 ? step.length : next;
    }
    const lr = initialLr * gamma ** exponent;
    return minLr === null ? lr : Math.max(lr, minLr);
  }
}

export const cosineSchema = withWarmupCheck(
  z.object({
    ...commonShape,
    min_lr: z.number().min(0, { error: 'expected a learning rate >= 0' }).nullable().default(null),
    min_lr_ratio: z.number().min(0, { error: 'expected a ratio >= 0' }).nullable().default(null),
  }),
).superRefine((options, context) => {
  if ((options.min_lr === null) === (options.min_lr_ratio === null)) {
    context.addIssue({
      code: 'custom',
      path: [options.min_lr === null ? 'min_lr' : 'min_lr_ratio'],
      message: 'set exactly one of min_lr and min_lr_ratio',
      input: options.min_lr === null ? options.min_lr : options.min_lr_ratio,
    });
  }
});
export type CosineOptions = z.infer<typeof cosineSchema>;

/** `target + (b − target)·(1 + cos(π·i/max_iters))/2`, target = min_lr or b·min_lr_ratio (MMCV's CosineAnnealingLrUpdaterHook). */
export class CosineAnnealingLr extends IterLrScheduler {
  constructor(private readonly options: CosineOptions, private readonly maxIters: number) {
    super(options);
  }

  regularLr(initialLr: number, iter: number): number {
    const target = this.options.min_lr_ratio !== null ? initialLr * this.options.min_lr_ratio : this.options.min_lr!;
    return target + 0.5 * (initialLr - target) * (Math.cos(Math.PI * progress(iter, this.maxIters)) + 1);
  }
}

export const fixedSchema = withWarmupCheck(z.object({ ...commonShape }));
export type FixedOptions = z.infer<typeof fixedSchema>;

/** The initial lr throughout (after the optional warm-up). */
export class FixedLr extends IterLrScheduler {
  regularLr(initialLr: number): number {
    return initialLr;
  }
}

// ---------------------------------------------------------------- registry

/** Lets `defineConfig` complete the policies' options (the runner maps `lr_config.policy` to `type`). */
declare module '@segkit/core' {
  interface LrSchedulerOptionsMap {
    poly: Partial<PolyOptions>;
    step: Partial<StepOptions> & { step: number | number[] };
    CosineAnnealing: Partial<CosineOptions>;
    fixed: Partial<FixedOptions>;
  }
}

const definitions: ComponentOf<'lrSchedulers', any, LrScheduler>[] = [
  {
    type: 'poly',
    schema: polySchema,
    description: "MMCV 'poly': (lr0 − min_lr)·(1 − iter/max_iters)^power + min_lr, per param group",
    create: (options: PolyOptions, context) => new PolyLr(options, maxItersOf(context, 'poly')),
  },
  {
    type: 'step',
    schema: stepSchema,
    description: "MMCV 'step': lr0·gamma^k at every `step` iterations or at the listed milestones",
    create: (options: StepOptions) => new StepLr(options),
  },
  {
    type: 'CosineAnnealing',
    schema: cosineSchema,
    description: "MMCV 'CosineAnnealing': cosine from lr0 to min_lr (or lr0·min_lr_ratio) over max_iters",
    create: (options: CosineOptions, context) => new CosineAnnealingLr(options, maxItersOf(context, 'CosineAnnealing')),
  },
  {
    type: 'fixed',
    schema: fixedSchema,
    description: "MMCV 'fixed': the initial lr (after an optional warm-up)",
    create: (options: FixedOptions) => new FixedLr(options),
  },
];

export const plugin = definePlugin({ name: '@segkit/lr-schedulers', version, components: { lrSchedulers: definitions } });
