import {
  isDict,
  SegkitError,
  describeValue,
  joinPath,
  nn,
  validateOptions,
  z,
  type BuildContext,
  type Optimizer,
  type OptimizerConstructor,
} from '@segkit/core';
import type { ParamGroupSpec } from '@segkit/core';
import { formatParamGroupTable, formatParameterSettings } from './format';

const multiplier = z.number({ error: 'expected a number >= 0' }).min(0, { error: 'expected a number >= 0' });

const customKeySchema = z.strictObject({ lr_mult: multiplier.optional(), decay_mult: multiplier.optional() });

/**
 * MMCV 1.x (MMSegmentation 0.x) `paramwise_cfg`. Every option stays "unset" when absent: the
 * `base_wd` check looks at which keys are present; the 0.x defaults (1.0, false) apply at use.
 * Unlike MMCV, an unknown field in a custom key (`lr_mul`) is an error rather than silently ignored.
 */
export const paramwiseSchema = z.strictObject({
  // entries are checked one by one (customKeySchema) so that a typo gets its "did you mean"
  custom_keys: z.record(z.string(), z.unknown(), { error: 'expected a dict of name substring → { lr_mult?, decay_mult? }' }).optional(),
  bias_lr_mult: multiplier.optional(),
  bias_decay_mult: multiplier.optional(),
  norm_decay_mult: multiplier.optional(),
  dwconv_decay_mult: multiplier.optional(),
  /** Inert until segkit has deformable convolutions (no parameter is a DCN offset). */
  dcn_offset_lr_mult: multiplier.optional(),
  bypass_duplicate: z.boolean().optional(),
});
export type CustomKeySetting = z.infer<typeof customKeySchema>;
export type ParamwiseCfg = Omit<z.infer<typeof paramwiseSchema>, 'custom_keys'> & { custom_keys?: Record<string, CustomKeySetting> };

/** The constructor's own options: MMCV's `(optimizer_cfg, paramwise_cfg)`; checked in `create` to name the user's paths. */
export const constructorSchema = z.object({
  optimizer_cfg: z.unknown(),
  paramwise_cfg: z.unknown().optional(),
});

/** What a custom key is tested against: `prefix.name`, with the dot even at the root (`.param1`). */
function matchName(modulePath: string, localName: string): string {
  return `${modulePath}.${localName}`;
}

/**
 * MMCV's DefaultOptimizerConstructor (0.x semantics, SPEC §1a): one group with every parameter when
 * `paramwise_cfg` is empty, otherwise one group per tensor in traversal order with the lr / weight
 * decay that custom keys or the bias / norm / depthwise rules give it. Builds the optimizer through
 * the `optimizers` registry with the groups in `extra.paramGroups`.
 */
export class DefaultOptimizerConstructor implements OptimizerConstructor {
  readonly optimizerCfg: Record<string, unknown>;
  readonly paramwiseCfg: ParamwiseCfg;
  readonly baseLr: number | undefined;
  readonly baseWd: number | undefined;
  /** Config path of the user's optimizer dict (`optimizer`), where the optimizer itself is built. */
  private readonly optimizerPath: string;
  /** Custom keys sorted as MMCV does: alphabetically, then (stable) by length descending. */
  private readonly sortedKeys: string[];
  /** MMCV's `if not paramwise_cfg`: none or `{}` means one plain group. */
  private readonly paramwiseEmpty: boolean;

  constructor(optimizerCfg: unknown, paramwiseCfg: unknown, private readonly context: BuildContext) {
    this.optimizerPath = joinPath(context.path, 'optimizer');
    if (!isDict(optimizerCfg)) {
      throw new SegkitError(`${this.optimizerPath}: expected an optimizer config dict ({ type: 'SGD', lr, ... }), got ${describeValue(optimizerCfg)}`);
    }
    const paramwisePath = `${this.optimizerPath}.paramwise_cfg`;
    if (paramwiseCfg !== undefined && paramwiseCfg !== null && !isDict(paramwiseCfg)) {
      throw new SegkitError(`${paramwisePath}: expected a dict (or null), got ${describeValue(paramwiseCfg)}`);
    }
    this.optimizerCfg = optimizerCfg;
    this.paramwiseEmpty = paramwiseCfg === undefined || paramwiseCfg === null || Object.keys(paramwiseCfg).length === 0;
    const parsed = validateOptions(paramwiseSchema, paramwiseCfg ?? {}, paramwisePath, 'paramwise_cfg');
    const customKeys =
      parsed.custom_keys &&
      Object.fromEntries(
        Object.entries(parsed.custom_keys).map(([key, setting]) => {
          return [key, validateOptions(customKeySchema, setting, `${paramwisePath}.custom_keys.${key}`, `custom key '${key}'`)];
        }),
      );
    this.paramwiseCfg = customKeys ? { ...parsed, custom_keys: customKeys } : (parsed as ParamwiseCfg);
    this.baseLr = typeof optimizerCfg.lr === 'number' ? optimizerCfg.lr : undefined;
    this.baseWd = typeof optimizerCfg.weight_decay === 'number' ? optimizerCfg.weight_decay : undefined;
    this.validateDecayNeedsBaseWd(paramwiseCfg ?? {}, paramwisePath);
    this.sortedKeys = Object.keys(customKeys ?? {}).sort().sort((a, b) => b.length - a.length);
  }

  /** MMCV's ValueError("base_wd should not be None"): a decay multiplier needs a base weight decay. */
  private validateDecayNeedsBaseWd(raw: Record<string, unknown>, paramwisePath: string): void {
    if (this.baseWd !== undefined) return;
    const why = `needs ${this.optimizerPath}.weight_decay to multiply, but the optimizer config has none`;
    for (const [key, entry] of Object.entries(this.paramwiseCfg.custom_keys ?? {})) {
      if ('decay_mult' in entry) throw new SegkitError(`${paramwisePath}.custom_keys.${key}.decay_mult: ${why}`);
    }
    for (const option of ['bias_decay_mult', 'norm_decay_mult', 'dwconv_decay_mult']) {
      if (option in raw) throw new SegkitError(`${paramwisePath}.${option}: ${why}`);
    }
  }

  build(model: nn.Module): Optimizer {
    const entries = model.parameterEntries();
    const paramGroups = this.paramwiseEmpty ? [this.singleGroup(entries)] : this.paramwiseGroups(entries);
    const optimizer = this.context.build('optimizers', { ...this.optimizerCfg }, 'optimizer', { paramGroups });
    this.context.logger.info(formatParamGroupTable(optimizer));
    return optimizer;
  }

  describeParameters(optimizer: Optimizer): string {
    return formatParameterSettings(optimizer);
  }

  /** Empty paramwise_cfg: every parameter once (`model.parameters()` skips repeats), frozen ones included. */
  private singleGroup(entries: readonly nn.ParameterEntry[]): ParamGroupSpec {
    const seen = new Set<unknown>();
    const params: ParamGroupSpec['params'] = [];
    for (const { name, variable } of entries) {
      if (seen.has(variable)) continue;
      seen.add(variable);
      params.push({ name, variable });
    }
    return { params };
  }

  private paramwiseGroups(entries: readonly nn.ParameterEntry[]): ParamGroupSpec[] {
    const cfg = this.paramwiseCfg;
    const groups: ParamGroupSpec[] = [];
    const grouped = new Set<unknown>();
    const keyWins = new Map<string, number>(this.sortedKeys.map((key) => [key, 0]));
    const testedNames: string[] = [];
    const frozenNames: string[] = [];
    for (const entry of entries) {
      const param = { name: entry.name, variable: entry.variable };
      if (!entry.variable.trainable) {
        frozenNames.push(matchName(entry.modulePath, entry.localName));
        // 0.x: a frozen tensor gets a plain group; the optimizer never updates it (no gradient).
        groups.push({ params: [param], key: 'frozen' });
        grouped.add(entry.variable);
        continue;
      }
      if (cfg.bypass_duplicate && grouped.has(entry.variable)) {
        this.context.warn(`${this.optimizerPath}.paramwise_cfg: ${entry.modulePath} is duplicate. It is skipped since bypass_duplicate=True`);
        continue;
      }
      grouped.add(entry.variable);
      const name = matchName(entry.modulePath, entry.localName);
      testedNames.push(name);
      const key = this.sortedKeys.find((candidate) => name.includes(candidate));
      if (key !== undefined) {
        keyWins.set(key, keyWins.get(key)! + 1);
        groups.push({ params: [param], key, ...this.customKeyGroup(key, entry.name) });
      } else {
        groups.push({ params: [param], ...this.ruleGroup(entry) });
      }
    }
    this.warnUnusedKeys(keyWins, testedNames, frozenNames);
    return groups;
  }

  private customKeyGroup(key: string, parameterName: string): Partial<ParamGroupSpec> {
    const setting = this.paramwiseCfg.custom_keys![key]!;
    const group: Partial<ParamGroupSpec> = { lr: this.multiplyLr(setting.lr_mult ?? 1, parameterName, `custom_keys.${key}.lr_mult`) };
    if (this.baseWd !== undefined) group.weight_decay = this.baseWd * (setting.decay_mult ?? 1);
    return group;
  }

  /** The bias / DCN lr rules and the norm → dwconv → bias weight-decay rules (0.x order, first match wins). */
  private ruleGroup(entry: nn.ParameterEntry): Partial<ParamGroupSpec> {
    const cfg = this.paramwiseCfg;
    const isNorm = nn.isNormModule(entry.module);
    const isDwconv = entry.module instanceof nn.Conv2d && entry.module.inChannels === entry.module.groups;
    const isDcnChild = false; // no deformable convolutions in segkit yet: dcn_offset_lr_mult never applies
    const isBias = entry.localName === 'bias';
    const group: Partial<ParamGroupSpec> = {};
    const labels: string[] = [];
    const label = (option: keyof ParamwiseCfg, name: string) => {
      if (option in cfg && !labels.includes(name)) labels.push(name);
    };
    if (isBias && !isNorm && !isDcnChild) {
      group.lr = this.multiplyLr(cfg.bias_lr_mult ?? 1, entry.name, 'bias_lr_mult');
      label('bias_lr_mult', 'bias');
    }
    if (this.baseWd !== undefined) {
      if (isNorm) {
        group.weight_decay = this.baseWd * (cfg.norm_decay_mult ?? 1);
        label('norm_decay_mult', 'norm');
      } else if (isDwconv) {
        group.weight_decay = this.baseWd * (cfg.dwconv_decay_mult ?? 1);
        label('dwconv_decay_mult', 'dwconv');
      } else if (isBias && !isDcnChild) {
        group.weight_decay = this.baseWd * (cfg.bias_decay_mult ?? 1);
        label('bias_decay_mult', 'bias');
      }
    }
    if (labels.length) group.key = labels.join('+');
    return group;
  }

  /** `base_lr × mult`; MMCV fails with "None × float" when the optimizer config has no lr (user issue #2239). */
  private multiplyLr(mult: number, parameterName: string, option: string): number {
    if (this.baseLr === undefined) {
      throw new SegkitError(
        `${this.optimizerPath}.lr: missing, but paramwise_cfg needs it: '${parameterName}' gets lr = lr × ${option}` +
          ` (did the config replace the whole optimizer dict instead of merging paramwise_cfg into the base schedule's?)`,
      );
    }
    return this.baseLr * mult;
  }

  /** segkit's addition: a custom key that decides no parameter is most likely a typo. */
  private warnUnusedKeys(keyWins: Map<string, number>, testedNames: readonly string[], frozenNames: readonly string[]): void {
    for (const [key, wins] of keyWins) {
      if (wins > 0) continue;
      const where = `${this.optimizerPath}.paramwise_cfg.custom_keys.${key}`;
      const matched = testedNames.filter((name) => name.includes(key));
      if (matched.length > 0) {
        this.context.warn(`${where}: has no effect: every parameter it matches (e.g. '${matched[0]}') is taken by a longer key`);
        continue;
      }
      const frozen = frozenNames.find((name) => name.includes(key));
      if (frozen !== undefined) {
        this.context.warn(`${where}: has no effect: it only matches frozen parameters (e.g. '${frozen}'), which are never updated`);
        continue;
      }
      const hint =
        key.startsWith('.') && testedNames.some((name) => name.includes(key.slice(1)))
          ? `; only root-level parameters are tested with a leading dot ('.param1'): did you mean '${key.slice(1)}'?`
          : `; names look like '${testedNames[0] ?? 'backbone.conv1.weight'}'`;
      this.context.warn(`${where}: matches no parameter name${hint}`);
    }
  }
}
