import * as fs from 'fs';
import * as path from 'path';
import type { Subscription } from 'rxjs';
import { Hook, Priority, z, type ComponentOf, type EventBus, type RunnerView } from '@segkit/core';
import { IntervalWindow, formatEta, formatGroupLrs, intervalLoggerOptions } from './window';

export const textLoggerSchema = z.object({
  ...intervalLoggerOptions,
  /** Also write the lines to `work_dir/<timestamp>.log`. */
  to_file: z.boolean().default(true),
  ignore_last: z.boolean().default(true),
  reset_flag: z.boolean().default(false),
});
type TextLoggerOptions = z.infer<typeof textLoggerSchema>;

/**
 * MMCV's TextLoggerHook (by_epoch false): every `interval` iterations one line of window means,
 * `Iter [50/40000]\tlr: ..., eta: ..., time: ..., data_time: ..., memory: ..., decode.loss_ce: ..., loss: ...`,
 * and the evaluation tables; on stdout and in `work_dir/<timestamp>.log`.
 */
export class TextLoggerHook extends Hook {
  readonly name = 'TextLoggerHook';
  override readonly priority = Priority.VERY_LOW;
  /** Data-parallel training: rank 0 alone writes (MMCV's master_only). */
  override readonly mainRankOnly = true;
  private readonly window = new IntervalWindow();
  private file: number | undefined;

  constructor(
    private readonly options: TextLoggerOptions,
    private readonly interval: number,
    private readonly print: (line: string) => void = (line) => console.log(line),
  ) {
    super();
  }

  private write(text: string): void {
    this.print(text);
    this.writeFile(text);
  }

  private writeFile(text: string): void {
    if (this.file !== undefined) fs.writeSync(this.file, `${text}\n`);
  }

  override observe(bus: EventBus, runner: RunnerView): Subscription {
    if (this.options.to_file) this.file = fs.openSync(path.join(runner.workDir, `${runner.timestamp}.log`), 'a');
    return bus.subscribeHandlers(this.name, {
      'run:start': (event) => this.write(`segkit: backend ${event.backend}, work_dir ${event.workDir}, iterations ${event.startIter}/${event.maxIters}`),
      'iter:end': (event) => {
        this.window.add(event);
        if (event.iter % this.interval !== 0) return;
        const window = this.window.flush();
        const losses = Object.entries(window.losses).map(([key, value]) => `${key}: ${value.toFixed(4)}`);
        const eta = formatEta(window.secondsPerIter * (event.maxIters - event.iter));
        this.write(
          `Iter [${event.iter}/${event.maxIters}]\tlr: ${formatGroupLrs(event.lrs)}, eta: ${eta}, time: ${window.time.toFixed(3)}, ` +
            `data_time: ${window.dataTime.toFixed(3)}, memory: ${event.memory.rssMB}, ${losses.join(', ')}`,
        );
      },
      'eval:end': (event) => {
        const summary = Object.entries(event.metrics)
          .filter(([key]) => !key.includes('.'))
          .map(([key, value]) => `${key}: ${value.toFixed(4)}`);
        this.write(`Iter(val) [${event.iter}]\t${summary.join(', ')}`);
      },
      // Core prints `log` and `hook:error` events through the kernel's logger; the text log file gets them too.
      log: (event) => this.writeFile(event.level === 'warn' ? `warning: ${event.message}` : event.message),
      'hook:error': (event) => this.writeFile(`warning: hook ${event.hook} failed on ${event.event}${event.repeats ? ` ${event.repeats} more times` : ''}: ${event.error.message}`),
      'checkpoint:saved': (event) => this.write(`Saving checkpoint at ${event.iter} iterations: ${event.path}`),
      'run:error': (event) => this.write(`training stopped at iteration ${event.iter}: ${event.error.message}`),
    });
  }

  override afterRun(): void {
    if (this.file !== undefined) fs.closeSync(this.file);
    this.file = undefined;
  }
}

export const textLoggerDefinition: ComponentOf<'hooks', TextLoggerOptions, TextLoggerHook> = {
  type: 'TextLoggerHook',
  schema: textLoggerSchema,
  create: (options, ctx) => new TextLoggerHook(options, options.interval ?? ctx.parent.logInterval ?? 50),
  description: 'MMSegmentation-style text log lines (stdout and work_dir/<timestamp>.log)',
};
