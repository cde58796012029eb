import { definePlugin, type ComponentOf, type OptimizerConstructor } from '@segkit/core';
import { DefaultOptimizerConstructor, constructorSchema, type ParamwiseCfg } from './constructor';

export { DefaultOptimizerConstructor, paramwiseSchema, type ParamwiseCfg } from './constructor';
export { formatParamGroupTable, formatParameterSettings } from './format';

const { version } = require('../../package.json') as { version: string };

declare module '@segkit/core' {
  interface OptimizerConstructorOptionsMap {
    DefaultOptimizerConstructor: { optimizer_cfg: Record<string, unknown>; paramwise_cfg?: ParamwiseCfg | null };
  }
}

const defaultOptimizerConstructor: ComponentOf<'optimizerConstructors', { optimizer_cfg?: unknown; paramwise_cfg?: unknown }, OptimizerConstructor> = {
  type: 'DefaultOptimizerConstructor',
  schema: constructorSchema,
  description: "MMCV's DefaultOptimizerConstructor: param groups from paramwise_cfg (custom_keys, bias/norm/dwconv multipliers)",
  create: (options, context) => new DefaultOptimizerConstructor(options.optimizer_cfg, options.paramwise_cfg, context),
};

/** MMCV's `build_optimizer(model, cfg.optimizer)` (core's, re-exported for users of this plugin). */
export { buildOptimizer } from '@segkit/core';

export const plugin = definePlugin({
  name: '@segkit/optim-paramwise',
  version,
  components: { optimizerConstructors: [defaultOptimizerConstructor] },
});
