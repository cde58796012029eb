import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Subscription } from 'rxjs';
import { Hook, Priority, z, type ComponentOf, type EventBus, type EventOf, type RunnerView } from '@segkit/core';
import { IntervalWindow, intervalLoggerOptions } from './window';

export const jsonLoggerSchema = z.object(intervalLoggerOptions);
type JsonLoggerOptions = z.infer<typeof jsonLoggerSchema>;

/**
 * One JSON object per logging interval (`mode: 'train'`) and per evaluation (`mode: 'val'`) in
 * `work_dir/<timestamp>.log.json`, after a first line with the environment and the config —
 * the file `segkit plot` and MMSegmentation's analyze_logs.py read.
 */
export class JsonLoggerHook extends Hook {
  readonly name = 'JsonLoggerHook';
  override readonly priority = Priority.VERY_LOW;
  /** Data-parallel training: rank 0 alone writes (MMCV's master_only). */
  override readonly mainRankOnly = true;
  private readonly window = new IntervalWindow();
  private file: number | undefined;
  logPath = '';

  constructor(private readonly interval: number) {
    super();
  }

  private append(record: Record<string, unknown>): void {
    if (this.file !== undefined) fs.writeSync(this.file, `${JSON.stringify(record)}\n`);
  }

  override observe(bus: EventBus, runner: RunnerView): Subscription {
    this.logPath = path.join(runner.workDir, `${runner.timestamp}.log.json`);
    this.file = fs.openSync(this.logPath, 'a');
    return bus.subscribeHandlers(this.name, {
      'run:start': (event) => {
        this.append({ env_info: `node ${process.version} ${os.platform()} ${os.arch()}; backend ${event.backend}`, config: event.config, seed: event.config.seed ?? null });
      },
      'iter:end': (event) => this.appendTrainRecord(event),
      'eval:end': (event) => this.append({ mode: 'val', iter: event.iter, ...event.metrics }),
    });
  }

  private appendTrainRecord(event: EventOf<'iter:end'>): void {
      this.window.add(event);
      if (event.iter % this.interval !== 0) return;
      const window = this.window.flush();
      const lrs: Record<string, number> = {};
      for (const { key, lr } of event.lrs) if (key !== undefined && !(`lr.${key}` in lrs)) lrs[`lr.${key}`] = lr;
      this.append({
        mode: 'train',
        iter: event.iter,
        lr: event.lrs[0]?.lr ?? 0,
        ...lrs,
        memory: event.memory.rssMB,
        data_time: round(window.dataTime),
        time: round(window.time),
        ...Object.fromEntries(Object.entries(window.losses).map(([key, value]) => [key, round(value)])),
      });
  }

  override afterRun(): void {
    if (this.file !== undefined) fs.closeSync(this.file);
    this.file = undefined;
  }
}

function round(value: number): number {
  return Number(value.toPrecision(6));
}

export const jsonLoggerDefinition: ComponentOf<'hooks', JsonLoggerOptions, JsonLoggerHook> = {
  type: 'JsonLoggerHook',
  schema: jsonLoggerSchema,
  create: (options, ctx) => new JsonLoggerHook(options.interval ?? ctx.parent.logInterval ?? 50),
  description: 'JSON-lines log (work_dir/<timestamp>.log.json) for segkit plot',
};
