import * as path from 'path';
import { PyDict, PyList, pyTruthy, pyTypeName, type PyValue } from './values';

/**
 * Python modules of MMSegmentation 0.x / MMCV 1.x that `custom_imports` may name, and the segkit plugin
 * that registers the same types. A name matches itself and its submodules (`mmseg.datasets.pipelines.*`).
 */
export const MMSEG_MODULE_PLUGINS: Readonly<Record<string, string>> = {
  'mmseg.models.backbones.resnet': '@segkit/backbone-resnet',
  'mmseg.models.backbones.unet': '@segkit/backbone-unet',
  'mmseg.models.decode_heads.fcn_head': '@segkit/head-fcn',
  'mmseg.models.decode_heads.psp_head': '@segkit/head-psp',
  'mmseg.models.losses.cross_entropy_loss': '@segkit/loss-cross-entropy',
  'mmseg.models.losses.dice_loss': '@segkit/loss-dice',
  'mmseg.models.losses.focal_loss': '@segkit/losses-extra',
  'mmseg.models.losses.lovasz_loss': '@segkit/losses-extra',
  'mmseg.models.losses.tversky_loss': '@segkit/losses-extra',
  'mmseg.core.seg.sampler.ohem_pixel_sampler': '@segkit/sampler-ohem',
  'mmseg.datasets.custom': '@segkit/datasets',
  'mmseg.datasets.cityscapes': '@segkit/datasets',
  'mmseg.datasets.drive': '@segkit/datasets',
  'mmseg.datasets.dataset_wrappers': '@segkit/datasets',
  'mmseg.datasets.pipelines': '@segkit/transforms',
  'mmseg.core.evaluation.eval_hooks': '@segkit/hook-eval',
  'mmcv.runner.optimizer.default_constructor': '@segkit/optim-paramwise',
  'mmcv.runner.hooks.lr_updater': '@segkit/lr-schedulers',
  'mmcv.runner.hooks.checkpoint': '@segkit/hook-checkpoint',
  'mmcv.runner.hooks.logger.text': '@segkit/hooks-logging',
};

export interface CustomImportsResult {
  /** segkit plugins (package names or absolute file paths), in the order the imports name them. */
  readonly plugins: string[];
  /** Python modules without a segkit plugin. */
  readonly unmapped: string[];
  /** MMCV's `allow_failed_imports`: unmapped modules are a notice instead of an error. */
  readonly allowFailed: boolean;
}

/**
 * MMCV's `custom_imports = dict(imports=[...], allow_failed_imports=False)` as segkit plugins. An entry
 * that cannot be a Python module name (it has a `/`, `@` or `-`, or ends in `.ts`/`.js`) is taken as a
 * segkit plugin (package or path relative to the config file) as it is.
 */
export function mapCustomImports(value: PyValue, configDir: string, extra: Readonly<Record<string, string>> = {}): CustomImportsResult | string {
  if (!(value instanceof PyDict)) return `custom_imports: expected dict(imports=[...]), got ${pyTypeName(value)}`;
  const imports = value.get('imports');
  const names = typeof imports === 'string' ? [imports] : imports instanceof PyList ? imports.items : undefined;
  if (!names || names.some((name) => typeof name !== 'string')) return 'custom_imports.imports: expected a module name or a list of module names';
  const plugins: string[] = [];
  const unmapped: string[] = [];
  const table = { ...MMSEG_MODULE_PLUGINS, ...extra };
  for (const name of names as string[]) {
    let plugin: string | undefined;
    if (/[/@-]|\.(ts|js|cjs|mjs)$/.test(name)) plugin = name.startsWith('.') ? path.resolve(configDir, name) : name;
    else {
      const match = Object.keys(table)
        .filter((module) => name === module || name.startsWith(`${module}.`))
        .sort((a, b) => b.length - a.length)[0];
      plugin = match ? table[match] : undefined;
    }
    if (plugin === undefined) unmapped.push(name);
    else if (!plugins.includes(plugin)) plugins.push(plugin);
  }
  return { plugins, unmapped, allowFailed: pyTruthy(value.get('allow_failed_imports')) };
}
