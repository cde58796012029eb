import type { Kernel } from '../plugin-system/kernel';
import type { Optimizer, OptimizerConstructor } from '../components';
import type { Module } from '../nn/module';
import { SegkitError } from '../errors';
import { describeValue } from '../config/validation';
import { optimizerConstructorConfig } from '../config/run-spec';

/**
 * MMCV's optimizer-constructor step of build_optimizer for an `optimizer` dict (the run spec's translation:
 * `constructor` and `paramwise_cfg` go to the constructor, the rest is the optimizer's own config).
 */
export function buildOptimizerConstructor(kernel: Pick<Kernel, 'build' | 'registries'>, optimizerConfig: unknown): OptimizerConstructor {
  if (optimizerConfig === null || typeof optimizerConfig !== 'object' || Array.isArray(optimizerConfig)) {
    throw new SegkitError(`optimizer: expected an optimizer config dict ({ type: 'SGD', lr, ... }), got ${describeValue(optimizerConfig)}`, 'optimizer');
  }
  const cfg = optimizerConstructorConfig(optimizerConfig as Record<string, unknown>);
  kernel.registries.optimizerConstructors.definition(cfg.type as string, 'optimizer.constructor');
  // Built at the config root so that the optimizer's own options read `optimizer.<option>` in errors.
  return kernel.build('optimizerConstructors', cfg, { path: '' });
}

/** MMCV's `build_optimizer(model, cfg.optimizer)`. */
export function buildOptimizer(kernel: Pick<Kernel, 'build' | 'registries'>, model: Module, optimizerConfig: unknown): Optimizer {
  return buildOptimizerConstructor(kernel, optimizerConfig).build(model);
}
