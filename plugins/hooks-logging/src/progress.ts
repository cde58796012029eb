import type { Subscription } from 'rxjs';
import { Hook, Priority, startProgress, z, type ComponentOf, type EventBus, type Progress, type ProgressStream } from '@segkit/core';

export const progressSchema = z.object({
  width: z.number().int().min(10).max(200).default(30),
  /** Draw even when the stream is not a terminal (for tests and CI logs). */
  force: z.boolean().default(false),
});
type ProgressOptions = z.infer<typeof progressSchema>;

/**
 * Training progress as core's progress bar (cli-progress): iterations done, ETA and the loss, redrawn in
 * place; the logger hooks' lines are printed above it, never on its line. Nothing when the stream is not a
 * terminal (the text logger prints lines there already).
 */
export class ProgressBarHook extends Hook {
  readonly name = 'ProgressBarHook';
  // After the loggers (VERY_LOW), so that its line is drawn last.
  override readonly priority = Priority.VERY_LOW + 5;
  /** Data-parallel training: rank 0 alone writes (MMCV's master_only). */
  override readonly mainRankOnly = true;
  private progress: Progress | undefined;

  constructor(
    private readonly options: ProgressOptions,
    private readonly stream: ProgressStream = process.stderr,
  ) {
    super();
  }

  override observe(bus: EventBus): Subscription | undefined {
    if (!this.stream.isTTY && !this.options.force) return undefined;
    const stop = () => {
      this.progress?.stop();
      this.progress = undefined;
    };
    return bus.subscribeHandlers(this.name, {
      'run:start': (event) => {
        stop();
        this.progress = startProgress({ label: 'train', total: event.maxIters, startValue: event.startIter, unit: 'iters', stream: this.stream, tty: true, barWidth: this.options.width });
      },
      'iter:end': (event) => {
        const loss = event.losses.loss;
        this.progress?.update(event.iter, loss === undefined ? '' : `loss ${loss.toFixed(4)}`);
      },
      'run:end': stop,
      'run:error': stop,
    });
  }

  /** Stops the bar if the run ended without `run:end` (e.g. interrupted). */
  override afterRun(): void {
    this.progress?.stop();
    this.progress = undefined;
  }
}

export const progressDefinition: ComponentOf<'hooks', ProgressOptions, ProgressBarHook> = {
  type: 'ProgressBarHook',
  schema: progressSchema,
  create: (options) => new ProgressBarHook(options),
  description: 'progress bar with ETA and loss on a terminal (log lines go above it)',
};
