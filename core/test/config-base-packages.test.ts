import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { loadConfig } from '../src/config/loader';
import { errorMessage, tempTree } from '../src/testing';

/** The repository's configs/ folder: the source of the @segkit/configs package (this file runs from core/dist/test). */
const CONFIGS_PACKAGE = path.resolve(__dirname, '..', '..', '..', 'configs');

/** A fake installed package whose exports map exposes its configs with and without `.ts`, as @segkit/configs does. */
const ACME_PACKAGE = {
  'node_modules/@acme/seg-configs/package.json': JSON.stringify({ name: '@acme/seg-configs', version: '1.0.0', exports: { './*.ts': './*.ts', './*': './*.ts' } }),
  'node_modules/@acme/seg-configs/_base_/model.ts': `import { defineConfig } from '@segkit/core';
    export default defineConfig({
      plugins: ['@segkit/head-fcn', './acme-plugin.js'],
      model: { type: 'EncoderDecoder', decode_head: { type: 'FCNHead', num_classes: 19, channels: 512 } },
      seed: 1,
    });`,
  // A base inside the package that names its own bases: relatively, and by another package's specifier.
  'node_modules/@acme/seg-configs/_base_/chain.ts': `export default {
      _base_: ['./model.ts', 'plain-configs/runtime'],
      model: { decode_head: { channels: 256 } },
    };`,
  // A package without an exports map: plain Node resolution with the loader's extensions.
  'node_modules/plain-configs/package.json': JSON.stringify({ name: 'plain-configs', version: '2.0.0' }),
  'node_modules/plain-configs/runtime.json': JSON.stringify({ _base_: 'plain-configs/schedule', log_config: { interval: 10 }, seed: 2 }),
  'node_modules/plain-configs/schedule.js': "module.exports = { optimizer: { type: 'SGD', lr: 0.01 }, runner: { max_iters: 100 }, seed: 3 };",
};

describe('configs: _base_ by package specifier', () => {
  it('resolves specifiers with and without extension from the config folder, along a chain of package bases', async () => {
    const dir = tempTree({
      ...ACME_PACKAGE,
      'exp/mine.ts': `export default {
        _base_: ['@acme/seg-configs/_base_/chain', '@acme/seg-configs/_base_/model.ts'],
        model: { decode_head: { num_classes: 2 } },
      };`,
    });
    const config = await loadConfig(path.join(dir, 'exp/mine.ts'));
    // chain = model.ts <- runtime.json <- schedule.js, then chain's own keys; then model.ts again on top.
    expect(config.model).to.deep.equal({ type: 'EncoderDecoder', decode_head: { type: 'FCNHead', num_classes: 2, channels: 512 } });
    expect(config.optimizer).to.deep.equal({ type: 'SGD', lr: 0.01 });
    expect(config.runner).to.deep.equal({ max_iters: 100 });
    expect(config.log_config).to.deep.equal({ interval: 10 });
    expect(config.seed).to.equal(1);
    // A package base's relative plugin path is relative to that base file, wherever the package is installed.
    const acmeBase = fs.realpathSync(path.join(dir, 'node_modules/@acme/seg-configs/_base_'));
    expect(config.plugins).to.deep.equal(['@segkit/head-fcn', path.join(acmeBase, 'acme-plugin.js')]);
  });

  it('loads @segkit/configs installed in node_modules (a symlink to the repository folder): bases, ready configs, pipeline helpers', async () => {
    const dir = tempTree({
      'project/my_pspnet.ts': `import { defineConfig } from '@segkit/core';
        import { img_norm_cfg, trainPipeline } from '@segkit/configs/_base_/datasets/pipelines';
        export default defineConfig({
          _base_: ['@segkit/configs/_base_/models/pspnet_r50-d8', '@segkit/configs/_base_/schedules/schedule_40k.ts'],
          model: { decode_head: { num_classes: 2 } },
          train_pipeline: trainPipeline({ img_scale: [64, 64], crop_size: [32, 32], ratio_range: [0.5, 2.0], cat_max_ratio: 0.75, img_norm_cfg }),
        });`,
      'project/my_ohem.ts': `export default { _base_: '@segkit/configs/pspnet/pspnet_r50-d8_512x1024_40k_cityscapes_ohem', runner: { max_iters: 8 } };`,
    });
    fs.mkdirSync(path.join(dir, 'project/node_modules/@segkit'), { recursive: true });
    fs.symlinkSync(CONFIGS_PACKAGE, path.join(dir, 'project/node_modules/@segkit/configs'), 'dir');

    const config = (await loadConfig(path.join(dir, 'project/my_pspnet.ts'))) as Record<string, any>;
    expect(config.model.backbone.type).to.equal('ResNetV1c');
    expect(config.model.decode_head).to.include({ type: 'PSPHead', num_classes: 2, channels: 512 });
    expect(config.model.auxiliary_head).to.include({ type: 'FCNHead', num_classes: 19 });
    expect(config.optimizer).to.deep.equal({ type: 'SGD', lr: 0.01, momentum: 0.9, weight_decay: 0.0005 });
    expect(config.plugins).to.deep.equal([
      '@segkit/backbone-resnet',
      '@segkit/head-psp',
      '@segkit/head-fcn',
      '@segkit/loss-cross-entropy',
      '@segkit/optimizers',
      '@segkit/optim-paramwise',
      '@segkit/lr-schedulers',
    ]);
    expect(config.train_pipeline.map((step: { type: string }) => step.type)).to.deep.equal([
      'LoadImageFromFile', 'LoadAnnotations', 'Resize', 'RandomCrop', 'RandomFlip', 'PhotoMetricDistortion', 'Normalize', 'Pad', 'DefaultFormatBundle', 'Collect',
    ]);
    expect(config.train_pipeline[3]).to.deep.equal({ type: 'RandomCrop', crop_size: [32, 32], cat_max_ratio: 0.75 });

    // A ready config whose own bases are relative paths inside the package.
    const ohem = (await loadConfig(path.join(dir, 'project/my_ohem.ts'))) as Record<string, any>;
    expect(ohem.model.decode_head.sampler).to.deep.equal({ type: 'OHEMPixelSampler', thresh: 0.7, min_kept: 100000 });
    expect(ohem.data.train.type).to.equal('CityscapesDataset');
    expect(ohem.runner).to.deep.equal({ type: 'IterBasedRunner', max_iters: 8 });
    expect(ohem.plugins).to.include.members(['@segkit/sampler-ohem', '@segkit/datasets', '@segkit/hooks-logging']);
  });

  it('a missing package is one error naming the config, the _base_ value, what was tried and the install command', async () => {
    const dir = tempTree({ 'cfg/mine.ts': "export default { _base_: ['./local.json', '@segkit/configs/_base_/models/pspnet_r50-d8'] };", 'cfg/local.json': '{}' });
    const file = path.join(dir, 'cfg/mine.ts');
    expect(await errorMessage(() => loadConfig(file))).to.equal(
      `config: ${file}: _base_ '@segkit/configs/_base_/models/pspnet_r50-d8' not found: ` +
        `the package @segkit/configs is not installed in ${path.join(dir, 'cfg')} or any parent folder's node_modules (npm install @segkit/configs); ` +
        `tried '@segkit/configs/_base_/models/pspnet_r50-d8' with .ts, .js, .cjs, .mjs, .json, .py and as written, with Node's module resolution from ${path.join(dir, 'cfg')}`,
    );
  });

  it('an installed package without the file names where the package is', async () => {
    const dir = tempTree({ ...ACME_PACKAGE, 'mine.json': JSON.stringify({ _base_: '@acme/seg-configs/_base_/nope.ts' }) });
    const file = path.join(dir, 'mine.json');
    expect(await errorMessage(() => loadConfig(file))).to.equal(
      `config: ${file}: _base_ '@acme/seg-configs/_base_/nope.ts' not found: @acme/seg-configs is installed (${path.join(dir, 'node_modules/@acme/seg-configs')}) ` +
        `but has no such config file; tried '@acme/seg-configs/_base_/nope.ts', with Node's module resolution from ${dir}`,
    );
  });

  it('relative paths keep working, with or without ./', async () => {
    const dir = tempTree({
      '_base_/model.json': JSON.stringify({ model: { type: 'EncoderDecoder' }, seed: 1 }),
      'base.json': JSON.stringify({ seed: 2, work_dir: 'w' }),
      'exp/mine.json': JSON.stringify({ _base_: ['../_base_/model.json', '../base.json'], seed: 3 }),
      'bare.json': JSON.stringify({ _base_: 'base.json' }),
    });
    expect(await loadConfig(path.join(dir, 'exp/mine.json'))).to.deep.equal({ model: { type: 'EncoderDecoder' }, seed: 3, work_dir: 'w' });
    expect(await loadConfig(path.join(dir, 'bare.json'))).to.deep.equal({ seed: 2, work_dir: 'w' });
    expect(await errorMessage(() => loadConfig(path.join(dir, 'exp/mine.json').replace('mine', 'gone')))).to.match(/config: file not found/);
  });
});
