import type { Subscription } from 'rxjs';
import type { EventBus } from '../bus';
import type { EvaluationResult, RunnerView } from '../components';
import type { CheckpointMeta } from '../checkpoint/segkit-checkpoint';

/**
 * MMEngine's hook priorities: the runner calls hooks in ascending order at every lifecycle point
 * (ties keep the order in which the config lists them). A hook may also use any number in between.
 */
export const Priority = {
  HIGHEST: 0,
  VERY_HIGH: 10,
  HIGH: 30,
  ABOVE_NORMAL: 40,
  NORMAL: 50,
  BELOW_NORMAL: 60,
  LOW: 70,
  VERY_LOW: 90,
  LOWEST: 100,
} as const;
export type PriorityName = keyof typeof Priority;

/**
 * The one lifecycle every hook follows (MMEngine's / Lightning's shape). Every method is a no-op here;
 * a hook overrides the points it acts at. The runner awaits them in `priority` order, under one
 * error policy: a `SegkitError` stops the run with its message; any other error is reported once
 * (identical repeats collapsed) and training goes on.
 *
 * Order within a run:
 *   observe → beforeRun → (beforeTrainIter → afterTrainIter [→ afterVal] [→ beforeSaveCheckpoint])* →
 *   onException (only on failure) → afterRun (always, also after a failure: flush and close files here).
 * On `--resume-from`, `afterLoadCheckpoint` runs before `beforeRun`.
 */
export abstract class Hook {
  /** The hook's type name, used in messages. */
  abstract readonly name: string;
  readonly priority: number = Priority.NORMAL;
  /**
   * Data-parallel training: the hook exists on rank 0 only (MMCV's `master_only`), for hooks that write
   * logs, checkpoints or the terminal. Hooks that take part in collective work (evaluation) or change the
   * model run on every rank (the default).
   */
  readonly mainRankOnly: boolean = false;

  /**
   * Subscribes to the event bus, for hooks that only observe (loggers). The runner unsubscribes what this
   * returns when the run ends, so nothing stays subscribed to the kernel's bus after it.
   */
  observe(_bus: EventBus, _runner: RunnerView): Subscription | undefined {
    return undefined;
  }

  beforeRun(_runner: RunnerView): void | Promise<void> {}

  /** Before iteration `runner.iter` (0-based) runs. */
  beforeTrainIter(_runner: RunnerView): void | Promise<void> {}

  /** After every training iteration (`runner.iter` iterations are done). */
  afterTrainIter(_runner: RunnerView): void | Promise<void> {}

  /** After each validation, with its metrics (before `eval:end` is published). */
  afterVal(_runner: RunnerView, _result: EvaluationResult): void | Promise<void> {}

  /** Before a checkpoint is written: a hook stores what must survive a resume in `meta.hooks[this.name]`. */
  beforeSaveCheckpoint(_runner: RunnerView, _meta: CheckpointMeta): void | Promise<void> {}

  /** After `--resume-from` restored weights and iteration: read back what `beforeSaveCheckpoint` stored. */
  afterLoadCheckpoint(_runner: RunnerView, _meta: CheckpointMeta): void | Promise<void> {}

  /** When the run fails (before `afterRun`). */
  onException(_runner: RunnerView, _error: Error): void | Promise<void> {}

  /** Always last, after success or failure. */
  afterRun(_runner: RunnerView): void | Promise<void> {}
}

/** The lifecycle points the runner calls, in the order of a run. */
export const HOOK_POINTS = [
  'beforeRun',
  'beforeTrainIter',
  'afterTrainIter',
  'afterVal',
  'beforeSaveCheckpoint',
  'afterLoadCheckpoint',
  'onException',
  'afterRun',
] as const;
export type HookPoint = (typeof HOOK_POINTS)[number];

/** Sorts hooks by priority; ties keep their given order (Array.prototype.sort is stable). */
export function sortByPriority<T extends { readonly priority: number }>(hooks: readonly T[]): T[] {
  return [...hooks].sort((a, b) => a.priority - b.priority);
}
