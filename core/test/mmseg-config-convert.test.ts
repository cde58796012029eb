import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { loadConfig } from '../src';
import { convertMmsegConfig, writeMmsegConversion } from '../src/config/mmseg';
import { errorMessage, tempTree } from '../src/testing';

const FIXTURES = path.join(__dirname, '../../test/fixtures/mmseg-configs');
const silent = { onNotice: () => undefined };

/** The fixture tree copied to a fresh folder (conversion writes next to the sources by default). */
function copyFixtures(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-mmseg-'));
  fs.cpSync(FIXTURES, dir, { recursive: true });
  return dir;
}

async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const original = console.warn;
  console.warn = () => undefined;
  try {
    return await fn();
  } finally {
    console.warn = original;
  }
}

describe('segkit convert config: MMSegmentation .py → .ts', () => {
  for (const relative of [
    'configs/pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.py',
    'configs/unet/fcn_unet_s5-d16_64x64_40k_drive.py',
    'hand/child.py',
    'hand/arithmetic.py',
  ]) {
    it(`${relative}: the .ts files load with loadConfig and equal the .py`, async () => {
      const dir = copyFixtures();
      const source = path.join(dir, relative);
      const result = await writeMmsegConversion(source, silent);
      expect(result.files[0]!.target).to.equal(source.replace(/\.py$/, '.ts'));
      for (const file of result.files) expect(fs.readFileSync(file.target, 'utf8')).to.equal(file.typescript);
      const fromPy = await quietly(() => loadConfig(source));
      const fromTs = await loadConfig(result.files[0]!.target);
      expect(fromTs).to.deep.equal(fromPy);
      expect(fromTs).to.deep.equal(result.config);
    });
  }

  it('keeps the _base_ chain: each .py base becomes its own .ts, named by the converted child', async () => {
    const dir = copyFixtures();
    const result = await convertMmsegConfig(path.join(dir, 'configs/pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.py'), silent);
    expect(result.files.map((f) => path.relative(dir, f.target))).to.deep.equal([
      'configs/pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.ts',
      'configs/_base_/models/pspnet_r50-d8.ts',
      'configs/_base_/datasets/cityscapes.ts',
      'configs/_base_/default_runtime.ts',
      'configs/_base_/schedules/schedule_40k.ts',
    ]);
    expect(result.typescript).to.equal(
      [
        "import { defineConfig } from '@segkit/core';",
        '',
        '// MMSegmentation 0.x pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.py, converted by `segkit convert config`.',
        '',
        'export default defineConfig({',
        '  _base_: [',
        "    '../_base_/models/pspnet_r50-d8.ts',",
        "    '../_base_/datasets/cityscapes.ts',",
        "    '../_base_/default_runtime.ts',",
        "    '../_base_/schedules/schedule_40k.ts',",
        '  ],',
        '});',
        '',
      ].join('\n'),
    );
    expect(result.files[4]!.typescript).to.equal(
      [
        "import { defineConfig } from '@segkit/core';",
        '',
        '// MMSegmentation 0.x _base_/schedules/schedule_40k.py, converted by `segkit convert config`.',
        '',
        'export default defineConfig({',
        '  plugins: [',
        "    '@segkit/optimizers',",
        "    '@segkit/optim-paramwise',",
        "    '@segkit/lr-schedulers',",
        "    '@segkit/hook-checkpoint',",
        "    '@segkit/hook-eval',",
        '  ],',
        '  // optimizer',
        "  optimizer: { type: 'SGD', lr: 0.01, momentum: 0.9, weight_decay: 0.0005 },",
        '  optimizer_config: {},',
        '  // learning policy',
        "  lr_config: { policy: 'poly', power: 0.9, min_lr: 1e-4, by_epoch: false },",
        '  // runtime settings',
        "  runner: { type: 'IterBasedRunner', max_iters: 40000 },",
        '  checkpoint_config: { by_epoch: false, interval: 4000 },',
        "  evaluation: { interval: 4000, metric: 'mIoU', pre_eval: true },",
        '});',
        '',
      ].join('\n'),
    );
  });

  it('shared names become consts, SyncBN is written as BN, helper names go in a spread', async () => {
    const result = await convertMmsegConfig(path.join(FIXTURES, 'configs/pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.py'), silent);
    const model = result.files[1]!.typescript;
    expect(model).to.contain("// model settings\nconst norm_cfg = { type: 'BN', requires_grad: true };\n");
    expect(model).to.contain('// SyncBN is written as BN');
    expect(model).to.contain('  ...{ norm_cfg },\n  model: {\n');
    expect(model).to.contain('      norm_cfg,\n      norm_eval: false,\n');
    const data = result.files[2]!.typescript;
    expect(data).to.contain("  { type: 'Normalize', ...img_norm_cfg },\n");
    expect(data).to.contain('    // img_ratios=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75],\n');
    expect(data).to.contain('  ...{ dataset_type, data_root, img_norm_cfg, crop_size, train_pipeline, test_pipeline },\n');
    const runtime = result.files[3]!.typescript;
    expect(runtime).to.contain("      { type: 'TextLoggerHook', by_epoch: false },\n      // dict(type='TensorboardLoggerHook')\n");
    expect(runtime).to.contain("  workflow: [['train', 1]],\n");
  });

  it('arithmetic: TypeScript keeps + - * / **; Python-only operators are written as their value', async () => {
    const text = (await convertMmsegConfig(path.join(FIXTURES, 'hand/arithmetic.py'), silent)).typescript;
    for (const line of ['neg_power: -(2 ** 2),', 'floor_div: -4 /* -7 // 2 */,', 'mixed: (1 + 2) * 3 - 4 / 8,', 'based: 0x10 + 0o17 + 0b11,', 'dotted: 0.5 + 5.0,', "repeat: 'abab' /* 'ab' * 2 */,", 'items: [...scaled, 4],', 'copied: { ...flags, yes: false },']) {
      expect(text).to.contain(`  ${line}\n`);
    }
    expect(text).to.contain("const scaled = [0.5, 0.5, 0.5] /* [0.5] * 3 */;\n");
  });

  it('--out FILE.ts: the root goes there, its bases next to their sources, _base_ paths relative to it', async () => {
    const dir = copyFixtures();
    const out = path.join(dir, 'converted/my_pspnet.ts');
    const result = await writeMmsegConversion(path.join(dir, 'configs/pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.py'), { ...silent, out });
    expect(result.files[0]!.target).to.equal(out);
    expect(result.typescript).to.contain("'../configs/_base_/models/pspnet_r50-d8.ts',");
    expect(fs.existsSync(path.join(dir, 'configs/_base_/models/pspnet_r50-d8.ts'))).to.equal(true);
    expect(await loadConfig(out)).to.deep.equal(result.config);
  });

  it('--out DIR: the .py tree mirrored into the folder; existing files are kept unless overwrite', async () => {
    const dir = copyFixtures();
    const out = path.join(dir, 'ts');
    const source = path.join(dir, 'configs/unet/fcn_unet_s5-d16_64x64_40k_drive.py');
    const result = await writeMmsegConversion(source, { ...silent, out });
    expect(result.files.map((f) => path.relative(out, f.target))).to.deep.equal([
      'unet/fcn_unet_s5-d16_64x64_40k_drive.ts',
      '_base_/models/fcn_unet_s5-d16.ts',
      '_base_/datasets/drive.ts',
      '_base_/default_runtime.ts',
      '_base_/schedules/schedule_40k.ts',
    ]);
    expect(await loadConfig(result.files[0]!.target)).to.deep.equal(result.config);
    const again = await errorMessage(() => writeMmsegConversion(source, { ...silent, out }));
    expect(again).to.match(/^convert config: would overwrite .*fcn_unet_s5-d16_64x64_40k_drive\.ts, .*schedule_40k\.ts; pass --force to replace them$/);
    await writeMmsegConversion(source, { ...silent, out, overwrite: true });
  });

  it('a name assigned twice: every statement becomes a declaration, in order', async () => {
    const dir = tempTree({ 'twice.py': "lr = 0.01\noptimizer = dict(type='SGD', lr=lr)\nlr = lr * 2\n" });
    const result = await writeMmsegConversion(path.join(dir, 'twice.py'), silent);
    expect(result.typescript).to.contain("let lr = 0.01;\nconst optimizer = { type: 'SGD', lr };\nlr = lr * 2;\n");
    expect(await loadConfig(path.join(dir, 'twice.ts'))).to.deep.equal({ plugins: ['@segkit/optimizers', '@segkit/optim-paramwise'], lr: 0.02, optimizer: { type: 'SGD', lr: 0.01 } });
  });

  it('conversion reports unknown types as loading does', async () => {
    const message = await errorMessage(() => convertMmsegConfig(path.join(FIXTURES, 'errors/unknown_types.py'), silent));
    expect(message).to.match(/segkit has no implementation of these 3 types:\n {2}backbone 'ResNeSt'/);
  });
});
