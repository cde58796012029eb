import { SegkitError } from '../errors';
import type { Module } from '../nn/module';
import type { Logger } from '../plugin-system/registries';
import { readCheckpointFile } from './checkpoint-file';
import { loadStateDictIntoModule, type LoadStateDictReport } from './load';
import { detectStateDictKind, mapImageNetBackbone, reviseKeys, selectPrefix } from './mapping';
import { fetchCheckpoint, type FetchCheckpointOptions } from './model-zoo';
import { formatValue } from '../config/validation';

export interface LoadCheckpointOptions extends FetchCheckpointOptions {
  /** Missing or unexpected keys are an error; default false (MMCV's load_checkpoint default). */
  strict?: boolean;
  /** Keep only the keys under this prefix, with the prefix removed (`init_cfg.prefix`, e.g. 'backbone.'). */
  prefix?: string;
  /** Key rewrites; default strips DataParallel's `module.` (MMCV's revise_keys). */
  reviseKeys?: [RegExp, string][];
  /** Receives "load checkpoint from ...", the notes, and the mismatch report (as a warning). */
  logger?: Logger;
}

export interface LoadCheckpointReport extends LoadStateDictReport {
  /** The local file that was read (the cache path for a model-zoo name or URL). */
  file: string;
  /** The checkpoint's meta (MMCV's CLASSES, PALETTE, ...), or null. */
  meta: Record<string, unknown> | null;
  /** What was left out (optimizer state, an ImageNet classifier), one line each. */
  notes: string[];
}

/** Whether `module` is a segmentor (it has a `backbone` child), so backbone checkpoints need the `backbone.` prefix. */
function hasBackboneChild(module: Module): boolean {
  return module.namedChildren().some(([name]) => name === 'backbone');
}

/**
 * MMCV's `load_checkpoint(model, filename, strict=False)` for segkit modules. `spec` is a local `.pth` or
 * `.safetensors` file, a model-zoo name (`open-mmlab://resnet50_v1c`, `torchvision://resnet50`) or a URL
 * (fetched into the cache; see fetchCheckpoint). The weights are taken from `state_dict` / `model`, the
 * `module.` prefix is stripped, `prefix` selects a sub-model, and an ImageNet classification checkpoint
 * (MMCV's V1c or torchvision's ResNet) loads into a segmentor's backbone with its `fc.*` classifier dropped.
 */
export async function loadCheckpoint(module: Module, spec: string, options: LoadCheckpointOptions = {}): Promise<LoadCheckpointReport> {
  const file = await fetchCheckpoint(spec, options);
  options.logger?.info(`load checkpoint from ${file === spec ? 'local path' : spec}: ${file}`);
  const contents = await readCheckpointFile(file);
  const notes = [...contents.notes];
  let tensors = reviseKeys(contents.tensors, options.reviseKeys);
  if (options.prefix) tensors = selectPrefix(tensors, options.prefix, file);
  const kind = detectStateDictKind(tensors.keys());
  if (kind === 'imagenet-resnet' || kind === 'imagenet-resnet-v1c') {
    const mapped = mapImageNetBackbone(tensors, hasBackboneChild(module) ? 'backbone.' : '');
    tensors = mapped.tensors;
    if (mapped.dropped.length) notes.push(`ImageNet classifier dropped: ${mapped.dropped.join(', ')}`);
  }
  for (const note of notes) options.logger?.info(`${file}: ${note}`);
  const report = loadStateDictIntoModule(module, tensors, { layout: contents.layout, strict: options.strict ?? false, source: file, logger: options.logger });
  return { ...report, file, meta: contents.meta, notes };
}

/** The children of a segmentor whose config may carry an `init_cfg` (MMSegmentation's names). */
const COMPONENTS = ['backbone', 'neck', 'decode_head', 'auxiliary_head'] as const;

/**
 * MMSegmentation's weight initialisation from checkpoints, for a built segmentor and its `model` config:
 * `model.pretrained` loads into the backbone (MMSegmentation turns it into the backbone's
 * `init_cfg: {type: 'Pretrained', checkpoint}`), each component's `init_cfg: {type: 'Pretrained', checkpoint,
 * prefix}` into that component, and the model's own `init_cfg` into the whole model — all non-strict, as
 * MMCV's PretrainedInit loads. Returns one report per checkpoint loaded.
 */
export async function loadPretrainedWeights(
  model: Module,
  modelCfg: Record<string, unknown>,
  options: Omit<LoadCheckpointOptions, 'prefix' | 'strict'> & { configPath?: string } = {},
): Promise<LoadCheckpointReport[]> {
  const configPath = options.configPath ?? 'model';
  const children = new Map(model.namedChildren());
  const targets: { module: Module; init: PretrainedInit }[] = [];
  const pretrained = modelCfg.pretrained;
  if (pretrained !== undefined && pretrained !== null) {
    if (typeof pretrained !== 'string' || pretrained === '') throw new SegkitError(`${configPath}.pretrained: expected a checkpoint path or URL, got ${formatValue(pretrained)}`, `${configPath}.pretrained`);
    const backboneCfg = modelCfg.backbone as { init_cfg?: unknown } | undefined;
    if (backboneCfg?.init_cfg) {
      throw new SegkitError(`${configPath}: pretrained and backbone.init_cfg cannot be specified at the same time (as in MMSegmentation)`, `${configPath}.pretrained`);
    }
    const backbone = children.get('backbone');
    if (!backbone) throw new SegkitError(`${configPath}.pretrained: the model has no backbone to load '${pretrained}' into`, `${configPath}.pretrained`);
    targets.push({ module: backbone, init: { checkpoint: pretrained } });
  }
  for (const name of COMPONENTS) {
    const componentCfg = modelCfg[name];
    const configs = Array.isArray(componentCfg) ? componentCfg : [componentCfg];
    configs.forEach((cfg, index) => {
      if (typeof cfg !== 'object' || cfg === null) return;
      const where = Array.isArray(componentCfg) ? `${configPath}.${name}.${index}` : `${configPath}.${name}`;
      const init = pretrainedFromInitCfg((cfg as { init_cfg?: unknown }).init_cfg, `${where}.init_cfg`);
      if (!init) return;
      let module = children.get(name);
      if (module && Array.isArray(componentCfg)) module = module.namedChildren().find(([child]) => child === String(index))?.[1];
      if (!module) throw new SegkitError(`${where}.init_cfg: the model has no ${name} to load '${init.checkpoint}' into`, `${where}.init_cfg`);
      targets.push({ module, init });
    });
  }
  const own = pretrainedFromInitCfg(modelCfg.init_cfg, `${configPath}.init_cfg`);
  if (own) targets.push({ module: model, init: own });
  const reports: LoadCheckpointReport[] = [];
  for (const { module, init } of targets) {
    reports.push(await loadCheckpoint(module, init.checkpoint, { ...options, prefix: init.prefix, strict: false }));
  }
  return reports;
}

/** MMCV's `init_cfg` entry that loads weights. */
export interface PretrainedInit {
  checkpoint: string;
  prefix?: string;
}

/**
 * The checkpoint an `init_cfg` asks for: `{type: 'Pretrained', checkpoint, prefix?}` (or a list holding one),
 * null for other initialisers (Kaiming, Constant, ...) or none. A Pretrained entry without a checkpoint string
 * is an error naming `configPath`.
 */
export function pretrainedFromInitCfg(initCfg: unknown, configPath: string): PretrainedInit | null {
  if (initCfg === null || initCfg === undefined) return null;
  const entries = Array.isArray(initCfg) ? initCfg : [initCfg];
  const pretrained = entries.filter((entry) => typeof entry === 'object' && entry !== null && (entry as { type?: unknown }).type === 'Pretrained');
  if (pretrained.length === 0) return null;
  if (pretrained.length > 1) throw new SegkitError(`${configPath}: more than one Pretrained initialiser`, configPath);
  const { checkpoint, prefix } = pretrained[0] as { checkpoint?: unknown; prefix?: unknown };
  if (typeof checkpoint !== 'string' || checkpoint === '') {
    throw new SegkitError(`${configPath}.checkpoint: expected a checkpoint path or URL, got ${formatValue(checkpoint)}`, `${configPath}.checkpoint`);
  }
  if (prefix !== undefined && prefix !== null && typeof prefix !== 'string') {
    throw new SegkitError(`${configPath}.prefix: expected a string, got ${formatValue(prefix)}`, `${configPath}.prefix`);
  }
  return typeof prefix === 'string' ? { checkpoint, prefix } : { checkpoint };
}
