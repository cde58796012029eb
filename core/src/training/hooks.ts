import { sortByPriority, type Hook } from './hook';
import type { LoadedConfig } from '../config/loader';
import type { Kernel } from '../plugin-system/kernel';
import { SegkitError } from '../errors';
import { describeValue } from '../config/validation';

/**
 * The hooks of a run, as MMCV's runner registers them: the loggers of `log_config.hooks` (with
 * `log_config.interval`), a CheckpointHook from `checkpoint_config`, an EvalHook from `evaluation`,
 * then `custom_hooks`; sorted by priority (stable).
 */
export function buildHooks(kernel: Kernel, config: LoadedConfig, options: { noValidate: boolean }): Hook[] {
  const hooks: Hook[] = [];
  const logConfig = (config.log_config ?? {}) as { interval?: number; hooks?: unknown };
  const interval = logConfig.interval ?? 50;
  if (!Number.isInteger(interval) || interval < 1) throw new SegkitError(`log_config.interval: expected a positive integer, got ${describeValue(interval)}`, 'log_config.interval');
  const loggers = logConfig.hooks ?? [];
  if (!Array.isArray(loggers)) throw new SegkitError('log_config.hooks: expected a list of hook configs', 'log_config.hooks');
  loggers.forEach((cfg, index) => hooks.push(kernel.build('hooks', cfg, { path: `log_config.hooks.${index}`, parent: { logInterval: interval } })));
  if (config.checkpoint_config) {
    hooks.push(kernel.build('hooks', { type: 'CheckpointHook', ...(config.checkpoint_config as object) }, { path: 'checkpoint_config' }));
  }
  if (config.evaluation && !options.noValidate) {
    hooks.push(kernel.build('hooks', { type: 'EvalHook', ...(config.evaluation as object) }, { path: 'evaluation' }));
  }
  const custom = config.custom_hooks ?? [];
  if (!Array.isArray(custom)) throw new SegkitError('custom_hooks: expected a list of hook configs', 'custom_hooks');
  custom.forEach((cfg, index) => hooks.push(kernel.build('hooks', cfg, { path: `custom_hooks.${index}`, parent: { logInterval: interval } })));
  return sortByPriority(hooks);
}
