import * as fs from 'fs';
import * as path from 'path';
import {
  Hook,
  Priority,
  SegkitError,
  copyFileAtomic,
  definePlugin,
  iterationBasedOnly,
  removeStaleTemporaryFiles,
  z,
  type CheckpointMeta,
  type ComponentOf,
  type EvaluationResult,
  type RunnerView,
} from '@segkit/core';

const { version } = require('../../package.json') as { version: string };

export const checkpointSchema = z.object({
  by_epoch: iterationBasedOnly(),
  /** Save every `interval` iterations (and at the end). */
  interval: z.number().int().positive({ error: 'expected a positive integer' }).default(4000),
  /** Keep only the newest N periodic checkpoints (-1: keep all). */
  max_keep_ckpts: z.number().int().min(-1).default(-1),
  /** Also write `latest.<format>` (MMCV's `latest.pth` link). */
  save_last: z.boolean().default(true),
  /**
   * 'safetensors' (segkit's own) or 'pth': a PyTorch checkpoint MMSegmentation loads (`{meta, state_dict}`,
   * OIHW, meta CLASSES/PALETTE/iter) that segkit also resumes from exactly.
   */
  format: z.enum(['safetensors', 'pth']).default('safetensors'),
  /** Metric name (e.g. 'mIoU', 'mDice') whose best value keeps `best_<metric>_iter_<n>.<format>`. */
  save_best: z.string().nullable().default(null),
  /** 'greater' (default for m* metrics) or 'less'. */
  rule: z.enum(['greater', 'less']).default('greater'),
  out_dir: z.string().nullable().default(null),
});
type CheckpointOptions = z.output<typeof checkpointSchema>;

declare module '@segkit/core' {
  interface HookOptionsMap {
    CheckpointHook: Omit<z.input<typeof checkpointSchema>, 'by_epoch'> & { by_epoch?: false };
  }
}

interface BestCheckpoint {
  metric: string;
  value: number;
  iter: number;
  file: string;
}

/** What survives a resume (in the checkpoint's `meta.hooks.CheckpointHook`). */
interface CheckpointHookState {
  best?: Omit<BestCheckpoint, 'file'> & { file: string };
}

/** Periodic checkpoints of either format (a run may switch formats across a resume). */
const PERIODIC = /^iter_(\d+)\.(?:safetensors|pth)$/;

/**
 * MMCV's CheckpointHook (by_epoch false): `iter_<n>.<format>` every `interval` iterations and at the end,
 * `latest.<format>`, at most `max_keep_ckpts` periodic files, and with `save_best` the best checkpoint by a
 * metric of each evaluation; `format` is 'safetensors' or 'pth'. Every file is written atomically; on resume
 * the rotation is rebuilt from the files on disk and the best score from the checkpoint's metadata.
 */
export class CheckpointHook extends Hook {
  readonly name = 'CheckpointHook';
  override readonly priority = Priority.NORMAL;
  /** Data-parallel training: rank 0 alone writes (MMCV's master_only). */
  override readonly mainRankOnly = true;
  private saved: string[] = [];
  private best: BestCheckpoint | undefined;

  constructor(private readonly options: CheckpointOptions) {
    super();
  }

  private dir(runner: RunnerView): string {
    return this.options.out_dir ? path.resolve(this.options.out_dir) : runner.workDir;
  }

  override beforeRun(runner: RunnerView): void {
    const removed = removeStaleTemporaryFiles(this.dir(runner));
    if (removed.length) runner.bus.emit({ type: 'log', level: 'warn', message: `removed ${removed.length} temporary file(s) left by an interrupted save: ${removed.join(', ')}` });
  }

  override async afterTrainIter(runner: RunnerView): Promise<void> {
    const atEnd = runner.iter === runner.maxIters;
    if (runner.iter % this.options.interval !== 0 && !atEnd) return;
    const dir = this.dir(runner);
    const file = path.join(dir, `iter_${runner.iter}.${this.options.format}`);
    await runner.saveCheckpoint(file, { ...this.bestMeta(), format: this.options.format });
    if (this.options.save_last) copyFileAtomic(file, path.join(dir, `latest.${this.options.format}`));
    this.saved = [...this.saved.filter((f) => f !== file), file];
    if (this.options.max_keep_ckpts > 0) {
      while (this.saved.length > this.options.max_keep_ckpts) fs.rmSync(this.saved.shift()!, { force: true });
    }
  }

  override async afterVal(runner: RunnerView, result: EvaluationResult): Promise<void> {
    const metric = this.options.save_best;
    if (!metric) return;
    const value = result.metrics[metric];
    if (value === undefined) {
      const available = Object.keys(result.metrics).filter((k) => !k.includes('.'));
      throw new SegkitError(`checkpoint_config.save_best: metric '${metric}' is not in the evaluation results (${available.join(', ')})`, 'checkpoint_config.save_best');
    }
    const better = !this.best || (this.options.rule === 'greater' ? value > this.best.value : value < this.best.value);
    if (!better) return;
    const file = path.join(this.dir(runner), `best_${metric}_iter_${runner.iter}.${this.options.format}`);
    const previous = this.best?.file;
    this.best = { metric, value, iter: runner.iter, file };
    await runner.saveCheckpoint(file, { ...this.bestMeta(), format: this.options.format });
    // Removed only after the new best is safely written.
    if (previous && previous !== file) fs.rmSync(previous, { force: true });
  }

  private bestMeta(): { best?: CheckpointMeta['best'] } {
    return this.best ? { best: { metric: this.best.metric, value: this.best.value, iter: this.best.iter } } : {};
  }

  override beforeSaveCheckpoint(_runner: RunnerView, meta: CheckpointMeta): void {
    const state: CheckpointHookState = this.best ? { best: { ...this.best, file: path.basename(this.best.file) } } : {};
    (meta.hooks ??= {})[this.name] = state;
  }

  override afterLoadCheckpoint(runner: RunnerView, meta: CheckpointMeta): void {
    const dir = this.dir(runner);
    const files = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    // The rotation continues over the periodic files of this run up to the resumed iteration.
    this.saved = files
      .map((name) => ({ name, iter: Number(PERIODIC.exec(name)?.[1] ?? NaN) }))
      .filter(({ iter }) => Number.isInteger(iter) && iter <= runner.iter)
      .sort((a, b) => a.iter - b.iter)
      .map(({ name }) => path.join(dir, name));
    const state = meta.hooks?.[this.name] as CheckpointHookState | undefined;
    this.best = state?.best ? { ...state.best, file: path.join(dir, state.best.file) } : undefined;
    // A best checkpoint from past the resume point belongs to the abandoned continuation.
    const metric = this.options.save_best;
    if (!metric) return;
    for (const name of files) {
      const match = new RegExp(`^best_${metric}_iter_(\\d+)\\.(?:safetensors|pth)$`).exec(name);
      if (match && path.join(dir, name) !== this.best?.file && Number(match[1]) > runner.iter) fs.rmSync(path.join(dir, name), { force: true });
    }
  }
}

export const checkpointDefinition: ComponentOf<'hooks', CheckpointOptions, CheckpointHook> = {
  type: 'CheckpointHook',
  schema: checkpointSchema,
  create: (options) => new CheckpointHook(options),
  description: 'periodic / latest / best checkpoints as safetensors or .pth (atomic writes; rotation and best kept across resumes)',
};

export const plugin = definePlugin({ name: '@segkit/hook-checkpoint', version, components: { hooks: [checkpointDefinition] } });
