import type { Subscription } from 'rxjs';
import { Hook, Priority, z, type ComponentOf, type EventBus } from '@segkit/core';
import { formatEta } from './window';

export const progressSchema = z.object({
  width: z.number().int().min(10).max(200).default(30),
  /** Draw even when stdout is not a terminal (for tests and CI logs). */
  force: z.boolean().default(false),
});
type ProgressOptions = z.infer<typeof progressSchema>;

/** A one-line progress bar redrawn in place on a terminal (nothing when stdout is not a TTY). */
export class ProgressBarHook extends Hook {
  readonly name = 'ProgressBarHook';
  // After the loggers (VERY_LOW), so that its line is drawn last.
  override readonly priority = Priority.VERY_LOW + 5;

  constructor(
    private readonly options: ProgressOptions,
    private readonly stream: NodeJS.WriteStream = process.stdout,
  ) {
    super();
  }

  /** The bar for `iter` of `maxIters`, e.g. `[=====>     ] 50/100  eta 0:01:40  loss 0.4321`. */
  render(iter: number, maxIters: number, secondsPerIter: number, loss: number | undefined): string {
    const filled = Math.round((iter / maxIters) * this.options.width);
    const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (iter === maxIters ? '=' : '>') : ''}${' '.repeat(this.options.width - filled)}`;
    const lossText = loss === undefined ? '' : `  loss ${loss.toFixed(4)}`;
    return `[${bar}] ${iter}/${maxIters}  eta ${formatEta(secondsPerIter * (maxIters - iter))}${lossText}`;
  }

  override observe(bus: EventBus): Subscription | undefined {
    if (!this.stream.isTTY && !this.options.force) return undefined;
    let totalTime = 0;
    let count = 0;
    return bus.subscribeHandlers(this.name, {
      'iter:end': (event) => {
        totalTime += event.stepTime;
        count += 1;
        this.stream.write(`\r${this.render(event.iter, event.maxIters, totalTime / count, event.losses.loss)}`);
        if (event.iter === event.maxIters) this.stream.write('\n');
      },
      // Start a fresh line before other output interrupts the bar.
      'eval:end': () => this.stream.write('\n'),
    });
  }
}

export const progressDefinition: ComponentOf<'hooks', ProgressOptions, ProgressBarHook> = {
  type: 'ProgressBarHook',
  schema: progressSchema,
  create: (options) => new ProgressBarHook(options),
  description: 'progress bar with ETA on a terminal',
};
