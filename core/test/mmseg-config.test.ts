import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { loadConfig } from '../src';
import { buildActivation, type ActivationConfig } from '../src/nn/activation';
import { buildNormLayer } from '../src/nn/norm';
import { CORE_TYPES, MMSEG_MODULE_PLUGINS, defaultTypeCatalog, loadMmsegConfig, readMmsegConfig } from '../src/config/mmseg';
import { errorMessage, tempTree } from '../src/testing';

// Fixtures: MMSegmentation 0.x configs and hand-written ones; expected/*.json were written by
// make_expected.py, which runs each file with Python and merges the bases with MMCV's rules.
const FIXTURES = path.join(__dirname, '../../test/fixtures/mmseg-configs');
const PSPNET = path.join(FIXTURES, 'configs/pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.py');
const UNET = path.join(FIXTURES, 'configs/unet/fcn_unet_s5-d16_64x64_40k_drive.py');

function expected(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected', `${name}.json`), 'utf8'));
}

/** What segkit makes of an MMCV result: SyncBN → BN, custom_imports → plugins, leftover `_delete_` dropped. */
function segkitForm(mmcv: unknown): unknown {
  if (Array.isArray(mmcv)) return mmcv.map(segkitForm);
  if (mmcv === null || typeof mmcv !== 'object') return mmcv;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(mmcv)) {
    if (key === '_delete_' || key === 'custom_imports') continue;
    out[key] = key === 'type' && value === 'SyncBN' ? 'BN' : segkitForm(value);
  }
  return out;
}

function withoutPlugins(config: Record<string, unknown>): Record<string, unknown> {
  const { plugins: _plugins, ...rest } = config;
  return rest;
}

const silent = { onNotice: () => undefined };

describe('MMSegmentation .py configs: the merged result equals MMCV Config.fromfile', () => {
  for (const [name, file] of [
    ['pspnet_r50-d8_512x1024_40k_cityscapes', PSPNET],
    ['fcn_unet_s5-d16_64x64_40k_drive', UNET],
    ['hand-child', path.join(FIXTURES, 'hand/child.py')],
    ['hand-arithmetic', path.join(FIXTURES, 'hand/arithmetic.py')],
  ] as const) {
    it(`${name}: values and key order`, async () => {
      const config = await readMmsegConfig(file);
      const want = expected(name);
      expect(config).to.deep.equal(want);
      // MMCV's dict order: base keys first (bases in _base_ order), then the file's new keys.
      expect(JSON.stringify(config)).to.equal(JSON.stringify(want));
    });
  }

  it('pspnet: spot values a reader would check', async () => {
    const config = (await readMmsegConfig(PSPNET)) as any;
    expect(config.model.backbone.dilations).to.deep.equal([1, 1, 2, 4]);
    expect(config.model.auxiliary_head.loss_decode.loss_weight).to.equal(0.4);
    expect(config.data.train.pipeline[6]).to.deep.equal({ type: 'Normalize', mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true });
    expect(config.lr_config.min_lr).to.equal(1e-4);
    expect(config.workflow).to.deep.equal([['train', 1]]);
    expect(Object.keys(config).slice(0, 3)).to.deep.equal(['norm_cfg', 'model', 'dataset_type']);
  });

  it('hand arithmetic: Python semantics of //, %, **, / and float literals', async () => {
    const config = (await readMmsegConfig(path.join(FIXTURES, 'hand/arithmetic.py'))) as any;
    expect([config.power, config.neg_power, config.floor_div, config.modulo, config.true_div]).to.deep.equal([8, -4, -4, 2, 3.5]);
    expect([config.float_floor, config.float_modulo, config.inverse, config.dotted, config.based]).to.deep.equal([3, 0.5, 0.5, 5.5, 34]);
    expect(config.lr).to.equal(1e-4 * 3);
    expect(config.concat).to.equal('segkit-triple');
    expect(config.escapes).to.equal('tab\there\nnew "quoted" \'single\' \\ A\u00e9');
    expect(config.raw).to.equal('C:\\new\\path');
  });

  it('hand child: {{_base_.x}} is the bases\' value, _delete_ replaces, MMCV keeps a _delete_ whose key has no base', async () => {
    const config = (await readMmsegConfig(path.join(FIXTURES, 'hand/child.py'))) as any;
    expect(config.train_pipeline).to.deep.equal([{ type: 'LoadImageFromFile' }, { type: 'RandomCrop', crop_size: [64, 64] }]);
    expect(config.backbone).to.deep.equal({ type: 'ResNetV1c', depth: 50, norm_cfg: { type: 'SyncBN', requires_grad: true } });
    expect(config.optimizer).to.deep.equal({ type: 'AdamW', lr: 6e-5, betas: [0.9, 0.999] });
    expect(config.runner).to.deep.equal({ _delete_: true, type: 'IterBasedRunner', max_iters: 100 });
    expect(config._private_).to.equal('kept');
    expect(config).to.not.have.property('__hidden');
    expect(config).to.not.have.property('_base_');
  });
});

describe('MMSegmentation .py configs as segkit configs (loadConfig)', () => {
  it('loadConfig(x.py): MMCV result with SyncBN as BN and the plugins its types need, notice once', async () => {
    const warnings: string[] = [];
    const original = console.warn;
    console.warn = (message: string) => warnings.push(message);
    let config: Record<string, unknown>;
    try {
      config = await loadConfig(PSPNET);
    } finally {
      console.warn = original;
    }
    expect(withoutPlugins(config)).to.deep.equal(segkitForm(expected('pspnet_r50-d8_512x1024_40k_cityscapes')));
    expect(config.plugins).to.deep.equal([
      '@segkit/backbone-resnet', '@segkit/head-psp', '@segkit/loss-cross-entropy', '@segkit/head-fcn', '@segkit/transforms', '@segkit/datasets',
      '@segkit/hooks-logging', '@segkit/optimizers', '@segkit/optim-paramwise', '@segkit/lr-schedulers', '@segkit/hook-checkpoint', '@segkit/hook-eval',
    ]);
    expect((config.model as any).backbone.norm_cfg).to.deep.equal({ type: 'BN', requires_grad: true });
    expect(warnings).to.deep.equal([
      `warning: config: ${PSPNET}: SyncBN is mapped to BN (norm_cfg.type, model.backbone.norm_cfg.type and 2 more): segkit trains on one device, where SyncBN is BatchNorm over the local batch`,
    ]);
  });

  it('unet: the same with loadMmsegConfig and a notice callback', async () => {
    const notices: string[] = [];
    const config = await loadMmsegConfig(UNET, { onNotice: (m) => notices.push(m) });
    expect(withoutPlugins(config)).to.deep.equal(segkitForm(expected('fcn_unet_s5-d16_64x64_40k_drive')));
    expect((config.model as any).test_cfg).to.deep.equal({ mode: 'slide', crop_size: [64, 64], stride: [42, 42] });
    expect(config.plugins).to.include.members(['@segkit/backbone-unet', '@segkit/head-fcn', '@segkit/datasets', '@segkit/hook-eval']);
    expect(notices).to.have.length(1);
    expect(notices[0]).to.match(/SyncBN is mapped to BN \(norm_cfg\.type, model\.backbone\.norm_cfg\.type and 2 more\)/);
  });

  it('no notice when there is no SyncBN; custom_imports become plugins and leave the config', async () => {
    const notices: string[] = [];
    await loadMmsegConfig(path.join(FIXTURES, 'hand/arithmetic.py'), { onNotice: (m) => notices.push(m) });
    expect(notices).to.deep.equal([]);
    const child = await loadMmsegConfig(path.join(FIXTURES, 'hand/child.py'), silent);
    expect(child).to.not.have.property('custom_imports');
    expect(child.plugins).to.include('@segkit/loss-dice');
    expect(child.runner).to.deep.equal({ type: 'IterBasedRunner', max_iters: 100 });
  });

  it('a .ts config may have a .py base, a .py config a .ts base; cycles across both are errors', async () => {
    const dir = tempTree({
      'base.py': "norm_cfg = dict(type='BN', requires_grad=True)\nmodel = dict(type='EncoderDecoder', backbone=dict(type='ResNetV1c', norm_cfg=norm_cfg))\n",
      'child.ts': "export default { _base_: './base.py', model: { backbone: { depth: 18 } }, seed: 1 };",
      'base2.json': JSON.stringify({ plugins: ['@segkit/hook-eval'], optimizer: { type: 'SGD', lr: 0.01 }, seed: 3 }),
      'child2.py': "_base_ = './base2.json'\noptimizer = dict(lr={{_base_.optimizer.lr}} , momentum=0.9)\n",
      'cycle-a.py': "_base_ = './cycle-b.ts'\n",
      'cycle-b.ts': "export default { _base_: './cycle-a.py' };",
    });
    const child = await loadConfig(path.join(dir, 'child.ts'));
    expect(child.model).to.deep.equal({ type: 'EncoderDecoder', backbone: { type: 'ResNetV1c', norm_cfg: { type: 'BN', requires_grad: true }, depth: 18 } });
    expect(child.plugins).to.deep.equal(['@segkit/backbone-resnet']);
    const child2 = await loadConfig(path.join(dir, 'child2.py'));
    expect(child2.optimizer).to.deep.equal({ type: 'SGD', lr: 0.01, momentum: 0.9 });
    // Plugins come from each file's own types: the child's partial optimizer has none.
    expect(child2.plugins).to.deep.equal(['@segkit/hook-eval']);
    expect(await errorMessage(() => loadConfig(path.join(dir, 'cycle-a.py')))).to.equal(
      `config: _base_ cycle: ${path.join(dir, 'cycle-a.py')} -> ${path.join(dir, 'cycle-b.ts')} -> ${path.join(dir, 'cycle-a.py')}`,
    );
  });

  it("MMCV's {{fileBasenameNoExtension}} and friends inside strings", async () => {
    const dir = tempTree({ 'exp_a.py': "work_dir = './work_dirs/{{ fileBasenameNoExtension }}'\nname = '{{fileBasename}}{{fileExtname}}'\n" });
    expect(await readMmsegConfig(path.join(dir, 'exp_a.py'))).to.deep.equal({ work_dir: './work_dirs/exp_a', name: 'exp_a.py.py' });
  });
});

describe('MMSegmentation .py configs: errors name file:line:column', () => {
  const cases: [string, string][] = [
    ['import.py', "2:1: import statements are not supported in configs (found 'import os'); list plugins in custom_imports instead"],
    ['from_import.py', "1:1: import statements are not supported in configs (found 'from mmseg.models import PSPHead'); list plugins in custom_imports instead"],
    ['call.py', "1:12: function calls other than dict(...) are not supported in configs (found 'max(')"],
    ['comprehension.py', "1:19: comprehensions are not supported in configs (found 'for')"],
    ['lambda.py', "1:5: lambda expressions are not supported in configs (found 'lambda')"],
    ['attribute.py', "1:15: attribute access is not supported in configs (found 'models.PSPHead'); use {{_base_.name}} to refer to a base's value"],
    ['undefined.py', "1:23: name 'norm_cfg' is not defined: a config can only use names assigned earlier in the same file"],
    ['conditional.py', "1:7: conditional expressions are not supported in configs (found 'if')"],
    ['indent.py', '2:1: unexpected indent (a config file has no blocks: every statement starts at column 1)'],
    ['unterminated.py', "1:5: unterminated string literal (opened with ')"],
    ['subscript.py', "1:5: subscripts are not supported in configs (found '[1, 2][')"],
    ['augmented.py', "2:3: augmented assignment '+=' is not supported in configs; write x = x + ..."],
    ['custom_imports.py', "2:1: custom_imports: segkit has no plugin for 'my_project.losses'; write the module as a segkit plugin and name its package or file in custom_imports"],
    ['duplicate_bases.py', '1:1: _base_: the same key is defined by more than one base, which MMCV does not allow: b (./_base_/one.py and ./_base_/two.py)'],
    ['missing_base_key.py', "2:12: {{_base_.b.z}}: _base_.b has no key 'z'"],
    ['merge_type.py', '2:1: a is a dict here but an int in the base, so it cannot be merged into it; set _delete_=True to replace it'],
    ['base_arithmetic.py', '2:5: a {{_base_.name}} reference must be a whole value: MMCV substitutes it after running the file, so arithmetic on it does not see the base value'],
  ];
  for (const [file, message] of cases) {
    it(file, async () => {
      const full = path.join(FIXTURES, 'errors', file);
      expect(await errorMessage(() => loadMmsegConfig(full, silent))).to.equal(`${full}:${message}`);
    });
  }

  it('types segkit does not have: one error listing each with where it is used', async () => {
    const file = path.join(FIXTURES, 'errors/unknown_types.py');
    expect(await errorMessage(() => loadMmsegConfig(file, silent))).to.equal(
      [
        `config: ${file}: segkit has no implementation of these 3 types:`,
        "  backbone 'ResNeSt' (model.backbone.type); segkit has: ResNet, ResNetV1c, UNet",
        "  decode head 'ASPPHead' (model.decode_head.type, model.auxiliary_head.1.type); segkit has: FCNHead, PSPHead",
        "  norm layer 'LN' (model.decode_head.norm_cfg.type); segkit has: BN, BN2d, GN, SyncBN",
      ].join('\n'),
    );
    // The raw MMCV reading does not judge types.
    expect(((await readMmsegConfig(file)) as any).model.backbone.type).to.equal('ResNeSt');
  });

  it('a hasType callback (e.g. the kernel answering from its registries) decides which types exist', async () => {
    const file = path.join(FIXTURES, 'errors/unknown_types.py');
    const extra = new Set(['ResNeSt', 'ASPPHead', 'LN']);
    const config = await loadMmsegConfig(file, { ...silent, types: { hasType: (category, type) => extra.has(type) || defaultTypeCatalog.hasType(category, type) } });
    expect((config.model as any).backbone.type).to.equal('ResNeSt');
  });

  it('small cases: dict() keywords, ** of a non-dict, division by zero, sets, f-strings, _base_ forms', async () => {
    const dir = tempTree({
      'dup.py': "norm = dict(type='BN')\nx = dict(type='Normalize', **norm)\n",
      'repeat.py': 'x = dict(a=1, a=2)\n',
      'spread.py': 'x = [1]\ny = dict(**x)\n',
      'zero.py': 'x = 1 // 0\n',
      'set.py': "x = {'a', 'b'}\n",
      'fstring.py': "x = f'{1}'\n",
      'tuple_base.py': "_base_ = ('./zero.py',)\n",
      'no_base.py': 'x = {{_base_.y}}\n',
      'keys.py': 'x = {1: 2}\n',
      'expression.py': 'x = 1\nx\n',
      'bad_number.py': 'x = 012\n',
      'unclosed.py': 'x = dict(a=[1, 2)\n',
    });
    const message = (file: string) => errorMessage(() => loadMmsegConfig(path.join(dir, file), silent));
    const at = (file: string, rest: string) => `${path.join(dir, file)}:${rest}`;
    expect(await message('dup.py')).to.equal(at('dup.py', "2:30: dict() got multiple values for keyword argument 'type'"));
    expect(await message('repeat.py')).to.equal(at('repeat.py', '1:15: keyword argument repeated: a'));
    expect(await message('spread.py')).to.equal(at('spread.py', '2:12: ** takes a dict, got list'));
    expect(await message('zero.py')).to.equal(at('zero.py', '1:5: division by zero (//)'));
    expect(await message('set.py')).to.equal(at('set.py', "1:6: set literals are not supported in configs (found '{'a''); a dict needs key: value"));
    expect(await message('fstring.py')).to.equal(at('fstring.py', '1:5: f-strings are not supported in configs (write the string out)'));
    expect(await message('tuple_base.py')).to.equal(at('tuple_base.py', '1:1: _base_: expected a file path or a list of file paths, got tuple'));
    expect(await message('no_base.py')).to.equal(at('no_base.py', '1:5: {{_base_.y}} is used in a file without _base_'));
    expect(await message('keys.py')).to.equal(at('keys.py', '1:6: dict keys must be strings in a config, got int 1'));
    expect(await message('expression.py')).to.equal(at('expression.py', "2:1: expected an assignment (name = value), found the expression 'x'"));
    expect(await message('bad_number.py')).to.equal(at('bad_number.py', "1:5: leading zeros in decimal integer literals are not permitted (found '012')"));
    expect(await message('unclosed.py')).to.equal(at('unclosed.py', "1:17: ')' does not match '[' opened at line 1:12"));
  });

  it('custom_imports with allow_failed_imports=True: a notice instead of the error', async () => {
    const dir = tempTree({ 'c.py': "custom_imports = dict(imports=['my_project.losses', './my_plugin.ts'], allow_failed_imports=True)\n" });
    const notices: string[] = [];
    const config = await loadMmsegConfig(path.join(dir, 'c.py'), { onNotice: (m) => notices.push(m) });
    expect(config.plugins).to.deep.equal([path.join(dir, 'my_plugin.ts')]);
    expect(notices).to.deep.equal([`config: ${path.join(dir, 'c.py')}: custom_imports my_project.losses skipped (no segkit plugin; allow_failed_imports=True)`]);
  });
});

describe('MMSegmentation .py configs: the type and module tables match segkit', () => {
  const packages = new Set(
    fs.readdirSync(path.join(__dirname, '../../../plugins')).map((dir) => (JSON.parse(fs.readFileSync(path.join(__dirname, '../../../plugins', dir, 'package.json'), 'utf8')) as { name: string }).name),
  );

  it('every package named by the custom_imports mapping is a plugin of this repo', () => {
    expect(Object.values(MMSEG_MODULE_PLUGINS).filter((name) => !packages.has(name))).to.deep.equal([]);
    expect(packages.has('@segkit/loss-dice')).to.equal(true);
  });

  it("the type catalog comes from the installed packages' `segkit.provides` declarations, plus core's own types", () => {
    expect(defaultTypeCatalog.providerOf('losses', 'DiceLoss')).to.equal('@segkit/loss-dice');
    expect(defaultTypeCatalog.providerOf('optimizerConstructors', 'DefaultOptimizerConstructor')).to.equal('@segkit/optim-paramwise');
    expect(defaultTypeCatalog.providerOf('hooks', 'CheckpointHook')).to.equal('@segkit/hook-checkpoint');
    // a layer-builder category, declared by the plugin as `"upsample": ["InterpConv"]`
    expect(defaultTypeCatalog.providerOf('upsample', 'InterpConv')).to.equal('@segkit/backbone-unet');
    expect(defaultTypeCatalog.hasType('norm', 'SyncBN')).to.equal(true);
    expect(defaultTypeCatalog.providerOf('segmentors', 'EncoderDecoder')).to.equal(undefined);
    expect(defaultTypeCatalog.hasType('losses', 'DiceLos')).to.equal(false);
    expect(defaultTypeCatalog.typesOf('losses')).to.deep.equal(['CrossEntropyLoss', 'DiceLoss', 'FocalLoss', 'LovaszLoss', 'MyLoss', 'TverskyLoss']);
  });

  it("core's norm and activation types are the ones its builders accept", () => {
    const before = tf.memory().numTensors;
    for (const type of CORE_TYPES.norm!) {
      const cfg = type === 'GN' ? { type, num_groups: 2 } : { type };
      const { layer } = buildNormLayer(cfg, 4);
      layer.dispose();
    }
    for (const type of CORE_TYPES.activation!) expect(() => buildActivation({ type } as ActivationConfig)).to.not.throw();
    expect(() => buildNormLayer({ type: 'LN' }, 4)).to.throw(/unknown norm layer type 'LN'/);
    expect(tf.memory().numTensors).to.equal(before);
  });
});
