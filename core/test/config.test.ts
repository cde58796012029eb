import * as path from 'path';
import { expect } from 'chai';
import { applyOverrides, loadConfig, mergeConfig, parseOverrideValue } from '../src/config/loader';
import { errorMessage, tempTree } from '../src/testing';

describe('configs', () => {
  it('merges _base_ lists parents first, dicts deep-merged, lists replaced', async () => {
    const dir = tempTree({
      '_base_/model.json': JSON.stringify({ model: { type: 'EncoderDecoder', decode_head: { type: 'FCNHead', num_classes: 19, loss_decode: { type: 'CrossEntropyLoss' } } }, seed: 1 }),
      '_base_/schedule.js': "module.exports = { optimizer: { type: 'SGD', lr: 0.01, momentum: 0.9, weight_decay: 0.0005 }, runner: { max_iters: 40000 }, seed: 2 };",
      'exp/head_lr.ts': `export default {
        _base_: ['../_base_/model.json', '../_base_/schedule.js'],
        optimizer: { paramwise_cfg: { custom_keys: { head: { lr_mult: 10 } } } },
        model: { decode_head: { num_classes: 2, pool_scales: [1, 2] } },
      };`,
    });
    const config = await loadConfig(path.join(dir, 'exp/head_lr.ts'));
    expect(config.optimizer).to.deep.equal({ type: 'SGD', lr: 0.01, momentum: 0.9, weight_decay: 0.0005, paramwise_cfg: { custom_keys: { head: { lr_mult: 10 } } } });
    expect(config.model).to.deep.equal({
      type: 'EncoderDecoder',
      decode_head: { type: 'FCNHead', num_classes: 2, loss_decode: { type: 'CrossEntropyLoss' }, pool_scales: [1, 2] },
    });
    expect(config.seed).to.equal(2); // later bases win over earlier ones
    expect(config).to.not.have.property('_base_');
    expect(config.filename).to.equal(path.join(dir, 'exp/head_lr.ts'));
  });

  it('_base_ as a single path; _delete_ replaces the base dict', async () => {
    const dir = tempTree({
      'base.json': JSON.stringify({ optimizer: { type: 'SGD', lr: 0.01, momentum: 0.9 } }),
      'child.json': JSON.stringify({ _base_: './base.json', optimizer: { _delete_: true, type: 'AdamW', lr: 0.001 } }),
    });
    const config = await loadConfig(path.join(dir, 'child.json'));
    expect(config.optimizer).to.deep.equal({ type: 'AdamW', lr: 0.001 });
  });

  it('mergeConfig does not mutate its inputs', () => {
    const base = { a: { b: 1, c: [1, 2] } };
    const merged = mergeConfig(base, { a: { c: [3] } });
    expect(merged).to.deep.equal({ a: { b: 1, c: [3] } });
    expect(base).to.deep.equal({ a: { b: 1, c: [1, 2] } });
  });

  it('--cfg-options: dotted paths, JSON values, list indices', () => {
    const config = { model: { decode_head: { sampler: { min_kept: 100000 } }, auxiliary_head: [{ loss_decode: { loss_weight: 0.4 } }] } };
    const result = applyOverrides(config, [
      'model.decode_head.sampler.min_kept=50000',
      'model.auxiliary_head.0.loss_decode.loss_weight=1.0',
      'model.decode_head.sampler.type=OHEMPixelSampler',
      'data.samples_per_gpu=2',
      'model.test_cfg.crop_size=[64,64]',
    ]);
    expect(result).to.deep.equal({
      model: {
        decode_head: { sampler: { min_kept: 50000, type: 'OHEMPixelSampler' } },
        auxiliary_head: [{ loss_decode: { loss_weight: 1.0 } }],
        test_cfg: { crop_size: [64, 64] },
      },
      data: { samples_per_gpu: 2 },
    });
    expect(parseOverrideValue('(1,2)')).to.deep.equal([1, 2]);
    expect(parseOverrideValue('true')).to.equal(true);
    expect(parseOverrideValue('null')).to.equal(null);
  });

  it('bad overrides and bad files are clear errors', async () => {
    expect(await errorMessage(() => applyOverrides({}, ['model.decode_head']))).to.equal("--cfg-options: expected key=value, got 'model.decode_head'");
    expect(await errorMessage(() => applyOverrides({ a: [1] }, ['a.3=2']))).to.equal("--cfg-options a.3=2: 'a' is a list of 1; '3' is not a valid index");
    const dir = tempTree({ 'bad.json': '{ nope', 'cycle-a.json': '{"_base_": "./cycle-b.json"}', 'cycle-b.json': '{"_base_": "./cycle-a.json"}', 'missing-base.json': '{"_base_": "./gone.json"}', 'cfg.yaml': 'a: 1' });
    expect(await errorMessage(() => loadConfig(path.join(dir, 'bad.json')))).to.match(/^config: .*bad\.json:1:3: syntax error: [^\n]+$/);
    expect(await errorMessage(() => loadConfig(path.join(dir, 'cycle-a.json')))).to.match(/^config: _base_ cycle: .*cycle-a\.json -> .*cycle-b\.json -> .*cycle-a\.json$/);
    expect(await errorMessage(() => loadConfig(path.join(dir, 'missing-base.json')))).to.match(/_base_ file not found: \.\/gone\.json/);
    expect(await errorMessage(() => loadConfig(path.join(dir, 'cfg.yaml')))).to.match(/unsupported config file type '\.yaml'/);
    expect(await errorMessage(() => loadConfig(path.join(dir, 'nope.ts')))).to.equal(`config: file not found: ${path.join(dir, 'nope.ts')}`);
  });
});

describe('configs: plugins over the _base_ chain', () => {
  it('accumulates plugins of every base (relative paths made absolute), without duplicates', async () => {
    const dir = tempTree({
      '_base_/a.json': JSON.stringify({ plugins: ['@segkit/hook-eval', './local-plugin.js'] }),
      '_base_/b.json': JSON.stringify({ plugins: ['@segkit/hook-eval', '@segkit/datasets'] }),
      'exp.json': JSON.stringify({ _base_: ['./_base_/a.json', './_base_/b.json'], plugins: ['@segkit/sampler-ohem'] }),
    });
    const config = await loadConfig(path.join(dir, 'exp.json'));
    expect(config.plugins).to.deep.equal(['@segkit/hook-eval', path.join(dir, '_base_/local-plugin.js'), '@segkit/datasets', '@segkit/sampler-ohem']);
  });
});
