import type { RegistryName } from './registries';

/** One component type a config needs: the registry it is built from and where the config names it. */
export interface TypeRequirement {
  readonly registry: RegistryName;
  readonly type: string;
  /** Config path of the key naming the type, e.g. `model.decode_head.loss_decode.0.type`. */
  readonly path: string;
}

type Dict = Record<string, unknown>;

/** Keys whose value (a dict or a list of dicts) is built from this registry wherever they appear. */
const NESTED_REGISTRIES: Readonly<Record<string, RegistryName>> = {
  backbone: 'backbones',
  neck: 'necks',
  decode_head: 'heads',
  auxiliary_head: 'heads',
  loss_decode: 'losses',
  sampler: 'samplers',
  pipeline: 'transforms',
};

/** Keys built from the same registry as the component holding them: RepeatDataset's `dataset`, MultiScaleFlipAug's `transforms`. */
const INNER_REGISTRIES: Readonly<Record<string, RegistryName>> = { dataset: 'datasets', transforms: 'transforms' };

/** Top-level sections the runner turns into a hook of this type (config/run-spec.ts). */
const IMPLIED_HOOKS: Readonly<Record<string, string>> = { checkpoint_config: 'CheckpointHook', evaluation: 'EvalHook' };

function isDict(value: unknown): value is Dict {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Every component type a merged segkit config names, at the places the runner and the APIs build them
 * from a registry: the model's parts, losses and samplers, datasets and their pipelines, the optimizer
 * and its constructor (DefaultOptimizerConstructor unless named), the LR policy, hooks (including those
 * `checkpoint_config` and `evaluation` imply), evaluation metrics and the backend. Types elsewhere
 * (e.g. `norm_cfg`, which core's layer builders read) are not listed.
 */
export function configTypeRequirements(config: Dict): TypeRequirement[] {
  const found: TypeRequirement[] = [];
  const record = (registry: RegistryName, type: unknown, path: string) => {
    if (typeof type === 'string') found.push({ registry, type, path });
  };
  const visit = (value: unknown, registry: RegistryName | undefined, path: string) => {
    if (Array.isArray(value)) {
      value.forEach((item, index) => visit(item, registry, `${path}.${index}`));
      return;
    }
    if (!isDict(value)) return;
    if (registry) record(registry, value.type, `${path}.type`);
    for (const [key, child] of Object.entries(value)) {
      const inner = INNER_REGISTRIES[key];
      visit(child, inner && inner === registry ? inner : NESTED_REGISTRIES[key], `${path}.${key}`);
    }
  };
  for (const [key, value] of Object.entries(config)) {
    if (key === 'model') visit(value, 'segmentors', key);
    else if (key === 'data' && isDict(value)) {
      for (const [split, dataset] of Object.entries(value)) visit(dataset, ['train', 'val', 'test'].includes(split) ? 'datasets' : undefined, `data.${split}`);
    } else if (key.endsWith('pipeline')) visit(value, 'transforms', key);
    else if (key === 'optimizer' && isDict(value)) {
      record('optimizers', value.type, 'optimizer.type');
      // Only an own `constructor` key counts: every object inherits one from Object.prototype.
      const constructorType = Object.prototype.hasOwnProperty.call(value, 'constructor') ? value.constructor : 'DefaultOptimizerConstructor';
      if (value.type !== undefined) record('optimizerConstructors', constructorType, 'optimizer.constructor');
    } else if (key === 'lr_config' && isDict(value)) record('lrSchedulers', value.policy, 'lr_config.policy');
    else if (key === 'log_config' && isDict(value)) visit(value.hooks, 'hooks', 'log_config.hooks');
    else if (key === 'custom_hooks') visit(value, 'hooks', key);
    else if (key === 'backend' && value !== 'auto') record('backends', value, key);
    if (IMPLIED_HOOKS[key] && isDict(value)) {
      record('hooks', IMPLIED_HOOKS[key], key);
      if (key === 'evaluation') {
        const metrics = Array.isArray(value.metric) ? value.metric : [value.metric];
        metrics.forEach((metric, index) => record('metrics', isDict(metric) ? metric.type : metric, Array.isArray(value.metric) ? `evaluation.metric.${index}` : 'evaluation.metric'));
      }
    }
  }
  return found;
}
