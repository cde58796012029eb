import { formatDuration, iterationBasedOnly, z, type EventOf } from '@segkit/core';

/** Options every interval logger accepts: iteration-based only, `interval` defaults to `log_config.interval`. */
export const intervalLoggerOptions = {
  by_epoch: iterationBasedOnly(),
  interval: z.number().int().positive().optional(),
};

/** Means over the iterations of one logging interval (MMCV's LogBuffer with `average(interval)`). */
export class IntervalWindow {
  private sums = new Map<string, number>();
  private count = 0;
  private timeSum = 0;
  private dataTimeSum = 0;
  /** Seconds of all iterations since the run (or resume) started, for the ETA. */
  private totalTime = 0;
  private totalIters = 0;

  add(event: EventOf<'iter:end'>): void {
    for (const [key, value] of Object.entries(event.losses)) this.sums.set(key, (this.sums.get(key) ?? 0) + value);
    this.count += 1;
    this.timeSum += event.stepTime;
    this.dataTimeSum += event.dataTime;
    this.totalTime += event.stepTime;
    this.totalIters += 1;
  }

  /** Window means, then the window is cleared. */
  flush(): { losses: Record<string, number>; time: number; dataTime: number; secondsPerIter: number } {
    const losses: Record<string, number> = {};
    for (const [key, sum] of this.sums) losses[key] = sum / this.count;
    const result = { losses, time: this.timeSum / this.count, dataTime: this.dataTimeSum / this.count, secondsPerIter: this.totalTime / this.totalIters };
    this.sums = new Map();
    this.count = 0;
    this.timeSum = 0;
    this.dataTimeSum = 0;
    return result;
  }
}

/** `h:mm:ss` like Python's str(timedelta(seconds=int(s))): core's one ETA format. */
export const formatEta = formatDuration;

/**
 * The lr of every distinct param group: the base groups' lr first, then each custom key's,
 * e.g. `1.000e-02 (head 1.000e-01)` — MMSegmentation shows only group 0 and hides the head's.
 */
/** Python's `'%.3e' % x`: the exponent has at least two digits (`1.000e-02`). */
export function formatExp(value: number): string {
  return value.toExponential(3).replace(/e([+-])(\d)$/, 'e$10$2');
}

export function formatGroupLrs(lrs: EventOf<'iter:end'>['lrs']): string {
  const byKey = new Map<string, number>();
  for (const { key, lr } of lrs) if (!byKey.has(key ?? '')) byKey.set(key ?? '', lr);
  const base = byKey.get('') ?? lrs[0]?.lr ?? 0;
  const extras = [...byKey.entries()].filter(([key, lr]) => key !== '' && lr !== base).map(([key, lr]) => `${key} ${formatExp(lr)}`);
  return `${formatExp(base)}${extras.length ? ` (${extras.join(', ')})` : ''}`;
}
