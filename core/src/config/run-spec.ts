/**
 * The run spec: one schema for every top-level key of an MMSegmentation 0.x config, and the one place
 * where MMSegmentation's spellings are translated into segkit components (`lr_config.policy` → an LR
 * scheduler type, `checkpoint_config` → CheckpointHook, `evaluation` → EvalHook, `log_config.hooks` with
 * `log_config.interval`, `optimizer.constructor` / `paramwise_cfg` → the optimizer constructor).
 * `SegkitConfig`, the type of `defineConfig`, is this schema's input type.
 */
import { z } from 'zod';
import { SegkitError, nearestName } from '../errors';
import type { Logger } from '../plugin-system/registries';
import type { HookConfig, Mergeable, ModelConfig, OptimizerConfig, DataSplitConfig } from './types';
import { describeValue, validateOptions } from './validation';

type Dict = Record<string, unknown>;

const positiveInt = z.number({ error: 'expected a positive integer' }).int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' });
const dict = <T extends object = Dict>() => z.custom<T>((value) => value !== null && typeof value === 'object' && !Array.isArray(value), { error: 'expected a dict' });
const list = <T = Dict>() => z.array(z.custom<T>((value) => value !== null && typeof value === 'object' && !Array.isArray(value), { error: 'expected a config dict' }), { error: 'expected a list of config dicts' });
const mergeable = { _delete_: z.boolean().optional() };

const dataSchema = z.strictObject({
  ...mergeable,
  // MMSegmentation 0.30's per-loader overrides: accepted, not used (segkit has one loader setting).
  train_dataloader: dict().optional(),
  val_dataloader: dict().optional(),
  test_dataloader: dict().optional(),
  samples_per_gpu: positiveInt.default(2),
  // 0 (load on the training thread) unless set: MMSegmentation's dataset bases always set it.
  workers_per_gpu: z.number({ error: 'expected an integer >= 0' }).int({ error: 'expected an integer >= 0' }).min(0, { error: 'expected an integer >= 0' }).default(0),
  train: dict<DataSplitConfig>().optional(),
  val: dict<DataSplitConfig>().optional(),
  test: dict<DataSplitConfig>().optional(),
});

/** The top-level keys segkit uses (validated here; components validate their own options when built). */
export const runSpecSchema = z.object({
  _base_: z.union([z.string(), z.array(z.string())]).optional(),
  plugins: z.array(z.string(), { error: 'expected a list of package names or file paths' }).optional(),
  backend: z.string().optional(),
  model: dict<ModelConfig>().optional(),
  data: dataSchema.optional(),
  // `constructor` (the optimizer-constructor type) is read at run time but cannot be typed: every object
  // literal inherits Object.prototype.constructor.
  optimizer: dict<OptimizerConfig & { paramwise_cfg?: Dict | null }>().optional(),
  optimizer_config: z.looseObject({ ...mergeable, grad_clip: z.unknown().optional() }).optional(),
  lr_config: z.looseObject({ ...mergeable, policy: z.string({ error: "expected the name of an LR policy (e.g. 'poly')" }) }).nullable().optional(),
  runner: z
    .strictObject({
      ...mergeable,
      type: z.literal('IterBasedRunner', { error: "segkit trains by iterations: expected 'IterBasedRunner'" }).default('IterBasedRunner'),
      max_iters: positiveInt,
      max_epochs: z.undefined({ error: 'segkit trains by iterations: use max_iters' }).optional(),
    })
    .optional(),
  log_config: z.strictObject({ ...mergeable, interval: positiveInt.default(50), hooks: list<HookConfig>().default([]) }).optional(),
  checkpoint_config: dict().nullable().optional(),
  evaluation: dict().nullable().optional(),
  custom_hooks: list<HookConfig>().optional(),
  load_from: z.string().nullable().optional(),
  resume_from: z.string().nullable().optional(),
  workflow: z.array(z.tuple([z.string(), z.number()]), { error: "expected a list like [['train', 1]]" }).optional(),
  seed: z.number({ error: 'expected an integer' }).int({ error: 'expected an integer' }).nullable().optional(),
  deterministic: z.boolean().optional(),
  work_dir: z.string().optional(),
  /** What to do when a loss is NaN or infinite: stop (default, nothing bad is saved) or skip the batch. */
  nan_policy: z.enum(['stop', 'skip'], { error: "expected 'stop' or 'skip'" }).optional(),
  // Accepted for MMSegmentation configs and ignored (IGNORED_KEYS says why, once per run).
  log_level: z.string().optional(),
  dist_params: dict().optional(),
  cudnn_benchmark: z.boolean().optional(),
  opencv_num_threads: z.number().optional(),
  mp_start_method: z.string().optional(),
  gpu_ids: z.array(z.number()).optional(),
  device: z.string().optional(),
  find_unused_parameters: z.boolean().optional(),
  auto_resume: z.boolean().optional(),
});

/** Keys of MMSegmentation configs that segkit accepts and ignores, with why (shown once as a notice). */
export const IGNORED_KEYS: Readonly<Record<string, string>> = {
  log_level: 'segkit logs at info level',
  dist_params: 'segkit trains in one process',
  cudnn_benchmark: 'there is no cuDNN in segkit',
  opencv_num_threads: 'segkit does not use OpenCV',
  mp_start_method: 'segkit loads data in worker threads',
  gpu_ids: 'segkit trains in one process',
  device: 'the device is the tfjs backend (`backend`)',
  find_unused_parameters: 'segkit trains in one process',
  auto_resume: 'use --resume-from',
};

/**
 * Names MMSegmentation `.py` configs define as variables for other keys (they stay in the merged config
 * as top-level keys there too); not settings, so never warned about.
 */
export const CONFIG_VARIABLES: readonly string[] = [
  'dataset_type',
  'data_root',
  'img_norm_cfg',
  'crop_size',
  'img_scale',
  'train_pipeline',
  'test_pipeline',
  'norm_cfg',
  'backbone_norm_cfg',
  'checkpoint_file',
];

/**
 * The sections whose types plugins extend (optimizers, hooks), spelled out by name: the schema's
 * inferred type would be written into core's declaration files as it was when core compiled, without
 * any plugin's declarations.
 */
export interface PluginTypedSections {
  optimizer?: OptimizerConfig & { paramwise_cfg?: Dict | null };
  log_config?: Mergeable & { interval?: number; hooks?: HookConfig[] };
  custom_hooks?: HookConfig[];
}

export type SegkitConfig = Omit<z.input<typeof runSpecSchema>, keyof PluginTypedSections> & PluginTypedSections;
type ParsedSpec = z.output<typeof runSpecSchema>;

/** A hook to build: its config (with `type`), its config path, and the log interval it may default to. */
export interface HookSpec {
  readonly cfg: Dict;
  readonly path: string;
}

/** The validated, translated run: what the runner builds its parts from. */
export interface RunSpec {
  readonly maxIters: number;
  readonly model: Dict;
  readonly data: { samplesPerGpu: number; workersPerGpu: number; train: Dict; val?: Dict; test?: Dict };
  /** The `optimizer` dict; `optimizerConstructorConfig` translates it for the optimizer constructor. */
  readonly optimizer: Dict;
  /** `lr_config` as an lrSchedulers config (`policy` → `type`), or null for a constant lr. */
  readonly lrScheduler: Dict | null;
  readonly logInterval: number;
  /** Loggers, CheckpointHook, EvalHook and custom hooks, in MMCV's registration order. */
  readonly hooks: readonly HookSpec[];
  readonly loadFrom: string | null;
  readonly resumeFrom: string | null;
  readonly seed: number | null;
  readonly workDir: string | undefined;
  readonly plugins: readonly string[];
  readonly nanPolicy: 'stop' | 'skip';
}

export interface RunSpecOptions {
  /** Unknown top-level keys are errors instead of warnings. */
  strict?: boolean;
  /** Drops the EvalHook (`--no-validate`). */
  noValidate?: boolean;
  logger?: Pick<Logger, 'warn' | 'info'>;
}

const KNOWN_KEYS = Object.keys(runSpecSchema.shape);

/** Unknown top-level keys: a warning with the nearest known key each (an error under `strict`). */
function checkTopLevelKeys(config: Dict, options: RunSpecOptions): void {
  const problems: string[] = [];
  for (const key of Object.keys(config)) {
    if (key in IGNORED_KEYS) {
      // A notice, not a warning: every MMSegmentation runtime config sets these.
      options.logger?.info(`${key}: accepted for MMSegmentation configs and ignored (${IGNORED_KEYS[key]})`);
      continue;
    }
    if (KNOWN_KEYS.includes(key) || CONFIG_VARIABLES.includes(key)) continue;
    const nearest = nearestName(key, KNOWN_KEYS);
    problems.push(`${key}: unknown top-level key${nearest ? ` (did you mean '${nearest}'?)` : ''}`);
  }
  if (problems.length === 0) return;
  if (options.strict) throw new SegkitError(problems.join('\n'));
  for (const problem of problems) options.logger?.warn(`${problem}; it is ignored (an error with --strict)`);
}

function required<T>(value: T | undefined | null, key: string): T {
  if (value === undefined || value === null) throw new SegkitError(`${key}: missing from the config (did the config's _base_ list include it?)`, key);
  return value;
}

/** MMCV's build_optimizer: `constructor` (default DefaultOptimizerConstructor) and `paramwise_cfg` go to the constructor, the rest is the optimizer's. */
export function optimizerConstructorConfig(optimizer: Dict): Dict {
  const own = new Map(Object.entries(optimizer));
  // Only an own `constructor` key counts: every object inherits one from Object.prototype.
  const type = own.get('constructor') ?? 'DefaultOptimizerConstructor';
  const paramwiseCfg = own.get('paramwise_cfg') ?? null;
  own.delete('constructor');
  own.delete('paramwise_cfg');
  if (typeof type !== 'string') throw new SegkitError(`optimizer.constructor: expected the name of an optimizer constructor, got ${describeValue(type)}`, 'optimizer.constructor');
  return { type, optimizer_cfg: Object.fromEntries(own), paramwise_cfg: paramwiseCfg };
}

/** MMCV's hook registration: loggers, CheckpointHook, EvalHook, then custom_hooks. */
function hookSpecs(spec: ParsedSpec, noValidate: boolean): HookSpec[] {
  const hooks: HookSpec[] = (spec.log_config?.hooks ?? []).map((cfg, i) => ({ cfg: cfg as Dict, path: `log_config.hooks.${i}` }));
  const evaluation = spec.evaluation ? { ...spec.evaluation } : null;
  const checkpoint = spec.checkpoint_config ? { ...spec.checkpoint_config } : null;
  // MMSegmentation keeps the best checkpoint from `evaluation.save_best`; in segkit CheckpointHook does.
  if (evaluation && 'save_best' in evaluation) {
    const { save_best: saveBest, rule } = evaluation;
    if (saveBest !== null && saveBest !== undefined) {
      if (!checkpoint) throw new SegkitError('evaluation.save_best: keeping the best checkpoint needs checkpoint_config', 'evaluation.save_best');
      checkpoint.save_best = saveBest;
      if (rule !== undefined) checkpoint.rule = rule;
    }
    delete evaluation.save_best;
    delete evaluation.rule;
  }
  if (checkpoint) hooks.push({ cfg: { type: 'CheckpointHook', ...checkpoint }, path: 'checkpoint_config' });
  if (evaluation && !noValidate) hooks.push({ cfg: { type: 'EvalHook', ...evaluation }, path: 'evaluation' });
  (spec.custom_hooks ?? []).forEach((cfg, i) => hooks.push({ cfg: cfg as Dict, path: `custom_hooks.${i}` }));
  return hooks;
}

/** Validates a merged training config and translates MMSegmentation's spellings into segkit components. */
export function parseRunSpec(config: Dict, options: RunSpecOptions = {}): RunSpec {
  checkTopLevelKeys(config, options);
  const known = Object.fromEntries(Object.entries(config).filter(([key]) => KNOWN_KEYS.includes(key)));
  const spec = validateOptions(runSpecSchema, known, '', 'the config');
  const data = required(spec.data, 'data');
  const optimizerConfig = spec.optimizer_config?.grad_clip;
  if (optimizerConfig !== undefined && optimizerConfig !== null) {
    options.logger?.warn('optimizer_config.grad_clip: segkit does not clip gradients yet; it is ignored');
  }
  for (const [mode] of spec.workflow ?? []) {
    if (mode !== 'train') options.logger?.warn(`workflow: '${mode}' phases are not run; validation runs through evaluation.interval`);
  }
  const lrConfig = spec.lr_config ? { ...spec.lr_config } : null;
  let lrScheduler: Dict | null = null;
  if (lrConfig) {
    const { policy, _delete_: _ignored, ...rest } = lrConfig;
    lrScheduler = { type: policy, ...rest };
  }
  return {
    maxIters: required(spec.runner, 'runner').max_iters,
    model: required(spec.model, 'model') as Dict,
    data: { samplesPerGpu: data.samples_per_gpu, workersPerGpu: data.workers_per_gpu, train: required(data.train, 'data.train'), val: data.val, test: data.test },
    optimizer: required(spec.optimizer, 'optimizer') as Dict,
    lrScheduler,
    logInterval: spec.log_config?.interval ?? 50,
    hooks: hookSpecs(spec, options.noValidate ?? false),
    loadFrom: spec.load_from ?? null,
    resumeFrom: spec.resume_from ?? null,
    seed: spec.seed ?? null,
    workDir: spec.work_dir,
    plugins: spec.plugins ?? [],
    nanPolicy: spec.nan_policy ?? 'stop',
  };
}
