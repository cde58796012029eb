import type { EventOf } from '@segkit/core';
import type { Scalar } from './event-schema';

/** Window means of one logging interval, as `IntervalWindow.flush()` gives them. */
export interface WindowMeans {
  losses: Record<string, number>;
  time: number;
  dataTime: number;
}

/**
 * The training scalars of one logging interval, tagged `train/<key>` as MMCV's TensorboardLoggerHook
 * does: `train/lr` (parameter group 0) and `train/lr_<key>` for each distinct custom key of the other
 * groups (the lr of every distinct group, as the JSON log's `lr.<key>`), every loss term, and
 * `train/data_time`, `train/time` (seconds per iteration) and `train/memory` (resident set, MB).
 */
export function trainScalars(event: EventOf<'iter:end'>, window: WindowMeans): Scalar[] {
  const scalars: Scalar[] = [];
  const first = event.lrs[0];
  if (first) scalars.push(['train/lr', first.lr]);
  const keys = new Set<string>();
  for (const { key, lr } of event.lrs) {
    if (key === undefined || keys.has(key)) continue;
    keys.add(key);
    scalars.push([`train/lr_${key}`, lr]);
  }
  for (const [key, value] of Object.entries(window.losses)) scalars.push([`train/${key}`, value]);
  scalars.push(['train/data_time', window.dataTime], ['train/time', window.time], ['train/memory', event.memory.rssMB]);
  return scalars;
}

/** Every metric of an evaluation (`val/aAcc`, `val/mIoU`, per class `val/IoU.<class>`, ...), MMCV's `val/` mode tag. */
export function evalScalars(event: EventOf<'eval:end'>): Scalar[] {
  return Object.entries(event.metrics).map(([key, value]): Scalar => [`val/${key}`, value]);
}
