import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { z, type ComponentDefinition, type EventBus, type Hook, type RunnerView } from '@segkit/core';
import { IntervalWindow, intervalLoggerOptions } from './window';

export const jsonLoggerSchema = z.object(intervalLoggerOptions);
type JsonLoggerOptions = z.infer<typeof jsonLoggerSchema>;

/**
 * One JSON object per logging interval (`mode: 'train'`) and per evaluation (`mode: 'val'`) in
 * `work_dir/<timestamp>.log.json`, after a first line with the environment and the config —
 * the file `segkit plot` and MMSegmentation's analyze_logs.py read.
 */
export class JsonLoggerHook implements Hook {
  readonly name = 'JsonLoggerHook';
  readonly priority = 90;
  private readonly window = new IntervalWindow();
  private file: number | undefined;
  logPath = '';

  constructor(private readonly interval: number) {}

  private append(record: Record<string, unknown>): void {
    if (this.file !== undefined) fs.writeSync(this.file, `${JSON.stringify(record)}\n`);
  }

  attach(bus: EventBus, runner: RunnerView): void {
    this.logPath = path.join(runner.workDir, `${runner.timestamp}.log.json`);
    this.file = fs.openSync(this.logPath, 'a');
    bus.subscribe(this.name, 'run:start', (event) => {
      this.append({ env_info: `node ${process.version} ${os.platform()} ${os.arch()}; backend ${event.backend}`, config: event.config, seed: event.config.seed ?? null });
    });
    bus.subscribe(this.name, 'iter:end', (event) => {
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
    });
    bus.subscribe(this.name, 'eval:end', (event) => this.append({ mode: 'val', iter: event.iter, ...event.metrics }));
  }

  close(): void {
    if (this.file !== undefined) fs.closeSync(this.file);
    this.file = undefined;
  }
}

function round(value: number): number {
  return Number(value.toPrecision(6));
}

export const jsonLoggerDefinition: ComponentDefinition<JsonLoggerOptions, JsonLoggerHook> = {
  type: 'JsonLoggerHook',
  schema: jsonLoggerSchema,
  create: (options, ctx) => new JsonLoggerHook(options.interval ?? (ctx.extra.interval as number | undefined) ?? 50),
  description: 'JSON-lines log (work_dir/<timestamp>.log.json) for segkit plot',
};
