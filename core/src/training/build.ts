import type { Kernel } from '../plugin-system/kernel';
import type { LoadedConfig } from '../config/loader';
import type { LrScheduler, Optimizer, OptimizerConstructor } from '../components';
import type { Module } from '../nn/module';
import { SegkitError } from '../errors';
import { describeValue } from '../config/validation';

/** A top-level dict of the config; a clear error when it is required and absent. */
export function configSection<T = Record<string, unknown>>(config: LoadedConfig, key: string, required: boolean): T | undefined {
  const value = config[key];
  if (value === undefined || value === null) {
    if (required) throw new SegkitError(`${key}: missing from the config (did the config's _base_ list include it?)`, key);
    return undefined;
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw new SegkitError(`${key}: expected a dict, got ${describeValue(value)}`, key);
  return value as T;
}

/**
 * MMCV's optimizer-constructor step of build_optimizer: `constructor` (default
 * DefaultOptimizerConstructor) and `paramwise_cfg` go to the constructor, the rest of the
 * `optimizer` dict is the optimizer's own config.
 */
export function buildOptimizerConstructor(kernel: Pick<Kernel, 'build' | 'registries'>, optimizerConfig: unknown): OptimizerConstructor {
  if (optimizerConfig === null || typeof optimizerConfig !== 'object' || Array.isArray(optimizerConfig)) {
    throw new SegkitError(`optimizer: expected an optimizer config dict ({ type: 'SGD', lr, ... }), got ${describeValue(optimizerConfig)}`, 'optimizer');
  }
  const own = new Map(Object.entries(optimizerConfig));
  // Only an own `constructor` key counts: every object inherits one from Object.prototype.
  const type = own.get('constructor') ?? 'DefaultOptimizerConstructor';
  const paramwiseCfg = own.get('paramwise_cfg') ?? null;
  own.delete('constructor');
  own.delete('paramwise_cfg');
  if (typeof type !== 'string') throw new SegkitError(`optimizer.constructor: expected the name of an optimizer constructor, got ${describeValue(type)}`, 'optimizer.constructor');
  kernel.registries.optimizerConstructors.definition(type, 'optimizer.constructor');
  // Built at the config root so that the optimizer's own options read `optimizer.<option>` in errors.
  return kernel.build('optimizerConstructors', { type, optimizer_cfg: Object.fromEntries(own), paramwise_cfg: paramwiseCfg }, { path: '' });
}

/** MMCV's `build_optimizer(model, cfg.optimizer)`. */
export function buildOptimizer(kernel: Pick<Kernel, 'build' | 'registries'>, model: Module, optimizerConfig: unknown): Optimizer {
  return buildOptimizerConstructor(kernel, optimizerConfig).build(model);
}

/** `lr_config = { policy, ... }` (MMCV's LR hooks) → an lrSchedulers component of type `policy`. */
export function buildLrScheduler(kernel: Kernel, config: LoadedConfig, maxIters: number): LrScheduler | undefined {
  const lrConfig = configSection<Record<string, unknown>>(config, 'lr_config', false);
  if (!lrConfig) return undefined;
  const { policy, ...rest } = lrConfig;
  if (typeof policy !== 'string') throw new SegkitError(`lr_config.policy: expected the name of an LR policy (e.g. 'poly'), got ${describeValue(policy)}`, 'lr_config.policy');
  return kernel.build('lrSchedulers', { type: policy, ...rest }, { path: 'lr_config', parent: { maxIters } });
}

