import {
  SegkitError,
  definePlugin,
  joinPath,
  nearestName,
  validateOptions,
  type BuildContext,
  type ComponentOf,
  type Optimizer,
  type OptimizerParent,
  type ParamGroupSpec,
  type z,
} from '@segkit/core';
import { SGD, sgdSchema, type SGDOptions } from './sgd';
import { Adam, adamOptionsSchema, adamWOptionsSchema, type AdamOptions } from './adam';

export { BaseOptimizer, type OptimizerDefaults, type ParameterSlots } from './base';
/** Moved to @segkit/core (shared with optimizer constructors); re-exported for compatibility. */
export type { ParamGroupSpec } from '@segkit/core';
export { SGD, sgdSchema, type SGDOptions } from './sgd';
export { Adam, adamOptionsSchema, adamWOptionsSchema, type AdamOptions } from './adam';

const { version } = require('../../package.json') as { version: string };

/** Lets `defineConfig` complete `optimizer.type` and its options. */
declare module '@segkit/core' {
  interface OptimizerOptionsMap {
    SGD: Partial<SGDOptions>;
    Adam: Partial<AdamOptions>;
    AdamW: Partial<AdamOptions>;
  }
}

interface OptimizerFactory<TOptions> {
  readonly schema: z.ZodObject;
  readonly description: string;
  make(options: TOptions, groups: readonly ParamGroupSpec[], path: string): Optimizer;
}

/** One table drives both the registry entries and `createOptimizer`. */
const FACTORIES: Readonly<Record<'SGD' | 'Adam' | 'AdamW', OptimizerFactory<any>>> = {
  SGD: {
    schema: sgdSchema,
    description: 'torch.optim.SGD: momentum, dampening, nesterov, L2 weight decay; per param group',
    make: (options: SGDOptions, groups, path) => new SGD(options, groups, path),
  },
  Adam: {
    schema: adamOptionsSchema,
    description: 'torch.optim.Adam: betas, eps, amsgrad, L2 weight decay; per param group',
    make: (options: AdamOptions, groups, path) => new Adam(options, groups, path, false),
  },
  AdamW: {
    schema: adamWOptionsSchema,
    description: 'torch.optim.AdamW: Adam with decoupled weight decay (default 0.01); per param group',
    make: (options: AdamOptions, groups, path) => new Adam(options, groups, path, true),
  },
};

/** The param groups an optimizer constructor hands down (`OptimizerParent`). */
function groupsFromContext(context: BuildContext<OptimizerParent>, type: string): readonly ParamGroupSpec[] {
  const groups = context.parent.paramGroups as readonly ParamGroupSpec[] | undefined;
  if (!Array.isArray(groups)) {
    throw new SegkitError(
      `${context.path}: ${type} needs the model's parameters: build it through an optimizer constructor ` +
        `(optimizerConstructors: DefaultOptimizerConstructor, plugin @segkit/optim-paramwise), which hands down parent.paramGroups`,
    );
  }
  return groups;
}

function definition(type: keyof typeof FACTORIES): ComponentOf<'optimizers'> {
  const factory = FACTORIES[type];
  return {
    type,
    schema: factory.schema,
    description: factory.description,
    create: (options, context) => factory.make(options, groupsFromContext(context, type), context.path),
  };
}

/**
 * Builds an optimizer without a kernel: `cfg` is MMSegmentation's optimizer dict (`type`, `lr`,
 * `momentum`, `weight_decay`, ...), `groups` the parameter groups. Options are validated like a config.
 */
export function createOptimizer(cfg: Record<string, unknown>, groups: readonly ParamGroupSpec[], path = 'optimizer'): Optimizer {
  const { type, ...options } = cfg;
  const types = Object.keys(FACTORIES);
  if (typeof type !== 'string' || !(type in FACTORIES)) {
    const nearest = typeof type === 'string' ? nearestName(type, types) : undefined;
    throw new SegkitError(`${joinPath(path, 'type')}: unknown optimizer ${JSON.stringify(type)}${nearest ? ` (did you mean '${nearest}'?)` : ''}; available: ${types.join(', ')}`);
  }
  const factory = FACTORIES[type as keyof typeof FACTORIES];
  return factory.make(validateOptions(factory.schema.strict(), options, path, type), groups, path);
}

export const plugin = definePlugin({
  name: '@segkit/optimizers',
  version,
  components: {
    optimizers: [definition('SGD'), definition('Adam'), definition('AdamW')],
  },
});
