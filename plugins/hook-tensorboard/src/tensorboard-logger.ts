import * as path from 'path';
import type { Subscription } from 'rxjs';
import { Hook, Priority, iterationBasedOnly, z, type ComponentOf, type EventBus, type EventOf, type RunnerView } from '@segkit/core';
import { IntervalWindow } from '@segkit/hooks-logging';
import { EventFileWriter } from './event-file';
import { evalScalars, trainScalars } from './scalars';

export const tensorboardLoggerSchema = z.object({
  by_epoch: iterationBasedOnly(),
  /** Iterations per logged point; defaults to `log_config.interval`. */
  interval: z.number().int().positive().optional(),
  /** Folder of the event files; defaults to `<work_dir>/tf_logs`. A relative path is taken from the current directory, as MMCV does. */
  log_dir: z.string().min(1, { error: 'expected a folder path' }).optional(),
  /** Skip the last iterations of the run when fewer than `interval` remain (otherwise their means are logged at the last iteration). */
  ignore_last: z.boolean().default(true),
  /**
   * Accepted for MMCV configs. MMCV's loggers share one log buffer, and reset_flag (which MMCV sets on the
   * last logger itself) clears it after a write; each segkit logger keeps its own window and clears it
   * after every write, which is what the flag asks for, so it changes nothing here.
   */
  reset_flag: z.boolean().default(false),
});
export type TensorboardLoggerOptions = z.output<typeof tensorboardLoggerSchema>;

/**
 * MMCV's TensorboardLoggerHook (by_epoch false) without TensorFlow: every `interval` iterations the
 * window means of every loss term, the lr of every distinct param group, data/iteration time and memory
 * (`train/...`), and every evaluation metric (`val/...`), as scalars in a TensorBoard event file under
 * `log_dir`.
 */
export class TensorboardLoggerHook extends Hook {
  readonly name = 'TensorboardLoggerHook';
  override readonly priority = Priority.VERY_LOW;
  /** Data-parallel training: rank 0 alone writes (MMCV's master_only). */
  override readonly mainRankOnly = true;
  private readonly window = new IntervalWindow();
  private writer: EventFileWriter | undefined;

  constructor(
    private readonly options: TensorboardLoggerOptions,
    private readonly interval: number,
    /** Wall clock in seconds (tests pass a fixed one). */
    private readonly now?: () => number,
  ) {
    super();
  }

  /** The event file being written (after `observe`). */
  get eventFile(): string | undefined {
    return this.writer?.file;
  }

  override observe(bus: EventBus, runner: RunnerView): Subscription {
    this.open(runner.workDir);
    return bus.subscribeHandlers(this.name, {
      'iter:end': (event) => this.onIterEnd(event),
      'eval:end': (event) => this.onEvalEnd(event),
    });
  }

  /** Creates `log_dir` and the event file (MMCV's before_run). */
  open(workDir: string): void {
    const logDir = this.options.log_dir !== undefined ? path.resolve(this.options.log_dir) : path.join(workDir, 'tf_logs');
    this.writer = new EventFileWriter(logDir, this.now);
  }

  onIterEnd(event: EventOf<'iter:end'>): void {
    this.window.add(event);
    const intervalDone = event.iter % this.interval === 0;
    const lastPartialWindow = event.iter === event.maxIters && !this.options.ignore_last;
    if (!intervalDone && !lastPartialWindow) return;
    this.openWriter().addScalars(event.iter, trainScalars(event, this.window.flush()));
  }

  onEvalEnd(event: EventOf<'eval:end'>): void {
    this.openWriter().addScalars(event.iter, evalScalars(event));
  }

  override afterRun(): void {
    this.writer?.close();
  }

  private openWriter(): EventFileWriter {
    if (!this.writer) throw new Error('TensorboardLoggerHook: no event file open (observe() was not called)');
    return this.writer;
  }
}

export const tensorboardLoggerDefinition: ComponentOf<'hooks', TensorboardLoggerOptions, TensorboardLoggerHook> = {
  type: 'TensorboardLoggerHook',
  schema: tensorboardLoggerSchema,
  create: (options, ctx) => new TensorboardLoggerHook(options, options.interval ?? ctx.parent.logInterval ?? 50),
  description: 'TensorBoard event files (work_dir/tf_logs): losses, lr, time, memory and evaluation metrics as scalars',
};
