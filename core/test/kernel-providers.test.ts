import * as path from 'path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { DataLoader, createKernel, loadConfigAndKernel, type Batch } from '../src';
import { configTypeRequirements } from '../src/plugin-system/config-types';
import { errorMessage, recordingLogger, tempTree } from '../src/testing';

const coreEntry = JSON.stringify(require.resolve('../src'));

/** An installed `@segkit/<entry>` package: its package.json (with `segkit.provides`) and its index.js. */
function installedPackage(entry: string, version: string, provides: Record<string, string[]>, index: string): Record<string, string> {
  const dir = `node_modules/@segkit/${entry}`;
  return {
    [`${dir}/package.json`]: JSON.stringify({ name: `@segkit/${entry}`, version, main: 'index.js', segkit: { provides } }),
    [`${dir}/index.js`]: index,
  };
}

// A loss whose instance is its options: these tests look at which plugin is loaded, not at the loss.
const fakeLossPackage = installedPackage(
  'loss-fake',
  '0.1.2',
  { losses: ['FakeLoss'] },
  `const { definePlugin, z } = require(${coreEntry});
   exports.plugin = definePlugin({ name: '@segkit/loss-fake', version: '0.1.2',
     components: { losses: [{ type: 'FakeLoss', schema: z.object({ loss_weight: z.number().default(1) }), create: (options) => options }] } });`,
);

describe('kernel: plugins found by type (package.json `segkit.provides`)', () => {
  it('loads the installed package that declares a type the config names, and logs it', async () => {
    const dir = tempTree(fakeLossPackage);
    const log = recordingLogger();
    const kernel = await createKernel({ configDir: dir, backend: 'cpu', logger: log });
    expect(kernel.registries.losses.has('FakeLoss')).to.equal(false);
    await kernel.ensureProviders({ model: { decode_head: { loss_decode: [{ type: 'FakeLoss', loss_weight: 0.5 }] } } });
    expect(log.infos).to.include("loaded @segkit/loss-fake@0.1.2 for losses type 'FakeLoss'");
    expect(kernel.autoLoadedPlugins).to.deep.equal(['@segkit/loss-fake']);
    expect(kernel.build('losses', { type: 'FakeLoss', loss_weight: 0.5 })).to.deep.equal({ loss_weight: 0.5 });
    // a second pass finds the type registered and loads nothing more
    await kernel.ensureProviders({ model: { decode_head: { loss_decode: { type: 'FakeLoss' } } } });
    expect(log.infos.filter((line) => line.startsWith('loaded '))).to.have.length(1);
  });

  it("a config naming DiceLoss without listing @segkit/loss-dice builds it (this repo's installed plugin)", async () => {
    const dir = tempTree({ 'dice.json': JSON.stringify({ model: { decode_head: { loss_decode: [{ type: 'DiceLoss', loss_weight: 3.0 }] } } }) });
    const log = recordingLogger();
    const { kernel } = await loadConfigAndKernel(path.join(dir, 'dice.json'), { backend: 'cpu', logger: log });
    const { version } = require('@segkit/loss-dice/package.json') as { version: string };
    expect(log.infos).to.include(`loaded @segkit/loss-dice@${version} for losses type 'DiceLoss'`);
    const loss = kernel.build('losses', { type: 'DiceLoss', loss_weight: 3.0 });
    expect(loss.lossName).to.equal('loss_dice');
    // equal logits → p = 0.5 for both classes; per class 1 − (2·0.5 + 1) / (0.25 + 0.25 + 1 + 1) = 0.2; mean 0.2, × 3
    const before = tf.memory().numTensors;
    const logits = tf.zeros([1, 1, 2, 2]);
    const labels = tf.tensor3d([[[0, 1]]], [1, 1, 2], 'int32');
    const value = loss.forward(logits, labels);
    expect((await value.data())[0]).to.be.closeTo(0.6, 1e-6);
    tf.dispose([logits, labels, value]);
    expect(tf.memory().numTensors).to.equal(before);
    expect(kernel.registries.losses.describe().find((entry) => entry.type === 'DiceLoss')).to.include({ plugin: '@segkit/loss-dice', version });
  });

  it('a plugin listed in `plugins` is used as listed: nothing is auto-loaded for its types', async () => {
    const dir = tempTree({ 'dice.json': JSON.stringify({ plugins: ['@segkit/loss-dice'], model: { decode_head: { loss_decode: { type: 'DiceLoss' } } } }) });
    const log = recordingLogger();
    const { kernel } = await loadConfigAndKernel(path.join(dir, 'dice.json'), { backend: 'cpu', logger: log });
    expect(kernel.registries.losses.has('DiceLoss')).to.equal(true);
    expect(kernel.autoLoadedPlugins).to.deep.equal([]);
    expect(log.infos.filter((line) => line.startsWith('loaded '))).to.deep.equal([]);
  });

  it('a type no installed package declares: the unknown-type error with the nearest registered name', async () => {
    const dir = tempTree(fakeLossPackage);
    const kernel = await createKernel({ configDir: dir, backend: 'cpu', logger: recordingLogger() });
    await kernel.ensureProviders({ model: { decode_head: { loss_decode: [{ type: 'FakeLoss' }, { type: 'FakeLos' }] } } });
    expect(await errorMessage(() => kernel.build('losses', { type: 'FakeLos' }, { path: 'model.decode_head.loss_decode.1' }))).to.equal(
      "model.decode_head.loss_decode.1.type: unknown losses type 'FakeLos'; did you mean 'FakeLoss'?; registered: FakeLoss; is its plugin listed in `plugins`?",
    );
  });

  it('the unknown-type error names the installed package that declares the type, and why it is not loaded', async () => {
    const dir = tempTree({
      ...fakeLossPackage,
      ...installedPackage('loss-broken', '1.0.0', { losses: ['BrokenLoss'] }, "throw new Error('boom');"),
    });
    const kernel = await createKernel({ configDir: dir, backend: 'cpu', logger: recordingLogger() });
    expect(await errorMessage(() => kernel.build('losses', { type: 'FakeLoss' }))).to.equal(
      "losses.type: unknown losses type 'FakeLoss'; registered: none; it is provided by @segkit/loss-fake, which is installed but not loaded: list it in `plugins`",
    );
    // a provider that fails to load does not stop the others; building its type reports why
    await kernel.ensureProviders({ model: { decode_head: { loss_decode: [{ type: 'BrokenLoss' }, { type: 'FakeLoss' }] } } });
    expect(kernel.autoLoadedPlugins).to.deep.equal(['@segkit/loss-fake']);
    expect(await errorMessage(() => kernel.build('losses', { type: 'BrokenLoss' }))).to.equal(
      "losses.type: unknown losses type 'BrokenLoss'; did you mean 'FakeLoss'?; registered: FakeLoss; it is provided by @segkit/loss-broken, which is installed but could not be loaded (plugin '@segkit/loss-broken' failed to load: boom)",
    );
  });

  it('data-loader worker threads (workers_per_gpu: 1) also get the auto-loaded plugins', async () => {
    const dir = tempTree(
      installedPackage('toy-datasets', '0.0.7', { datasets: ['ToyDataset'] }, `exports.plugin = require(${JSON.stringify(path.join(__dirname, 'data-toy-plugin.js'))}).plugin;`),
    );
    const kernel = await createKernel({ configDir: dir, backend: 'cpu', logger: recordingLogger() });
    const datasetCfg = { type: 'ToyDataset', length: 5 };
    await kernel.ensureProviders({ data: { workers_per_gpu: 1, train: datasetCfg } });
    expect(kernel.autoLoadedPlugins).to.deep.equal(['@segkit/toy-datasets']);
    const options = { batchSize: 2, shuffle: true, seed: 5, plugins: [] as string[], path: 'data.train' };
    const inline = DataLoader.fromConfig(kernel, datasetCfg, options);
    const threaded = DataLoader.fromConfig(kernel, datasetCfg, { ...options, workers: 1 });
    const fingerprint = (batch: Batch) => ({ indices: batch.indices, draws: batch.img_metas.map((meta) => meta.draw), first: batch.img.data[0] });
    try {
      const expected: ReturnType<typeof fingerprint>[] = [];
      const actual: ReturnType<typeof fingerprint>[] = [];
      for (let i = 0; i < 3; i++) expected.push(fingerprint((await inline.next())!));
      for (let i = 0; i < 3; i++) actual.push(fingerprint((await threaded.next())!));
      expect(actual).to.deep.equal(expected);
      // the toy sample's pixels are its index plus its random draw
      expect(actual[0]!.first).to.be.closeTo(actual[0]!.indices[0]! + (actual[0]!.draws[0] as number), 1e-6);
    } finally {
      await threaded.close();
    }
  });
});

describe('configTypeRequirements: the types a config names, by registry', () => {
  it('walks the model, data, pipelines, optimizer, LR policy, hooks, metrics and backend', () => {
    const pipeline = [{ type: 'LoadImageFromFile' }, { type: 'MultiScaleFlipAug', transforms: [{ type: 'Resize' }] }];
    const found = configTypeRequirements({
      backend: 'native',
      model: {
        type: 'EncoderDecoder',
        backbone: { type: 'UNet', norm_cfg: { type: 'BN' } },
        decode_head: { type: 'FCNHead', sampler: { type: 'OHEMPixelSampler' }, loss_decode: [{ type: 'CrossEntropyLoss' }, { type: 'DiceLoss' }] },
        auxiliary_head: [{ type: 'FCNHead', loss_decode: { type: 'FocalLoss' } }],
      },
      train_pipeline: pipeline,
      data: { workers_per_gpu: 1, train: { type: 'RepeatDataset', dataset: { type: 'DRIVEDataset', pipeline } } },
      optimizer: { type: 'SGD', lr: 0.01 },
      lr_config: { policy: 'poly' },
      log_config: { interval: 10, hooks: [{ type: 'TextLoggerHook' }] },
      checkpoint_config: { interval: 100 },
      evaluation: { interval: 100, metric: ['mIoU', 'mDice'] },
      custom_hooks: [{ type: 'TensorboardLoggerHook' }],
    });
    expect(found.map(({ registry, type, path: at }) => `${registry} ${type} ${at}`)).to.deep.equal([
      'backends native backend',
      'segmentors EncoderDecoder model.type',
      'backbones UNet model.backbone.type',
      'heads FCNHead model.decode_head.type',
      'samplers OHEMPixelSampler model.decode_head.sampler.type',
      'losses CrossEntropyLoss model.decode_head.loss_decode.0.type',
      'losses DiceLoss model.decode_head.loss_decode.1.type',
      'heads FCNHead model.auxiliary_head.0.type',
      'losses FocalLoss model.auxiliary_head.0.loss_decode.type',
      'transforms LoadImageFromFile train_pipeline.0.type',
      'transforms MultiScaleFlipAug train_pipeline.1.type',
      'transforms Resize train_pipeline.1.transforms.0.type',
      'datasets RepeatDataset data.train.type',
      'datasets DRIVEDataset data.train.dataset.type',
      'transforms LoadImageFromFile data.train.dataset.pipeline.0.type',
      'transforms MultiScaleFlipAug data.train.dataset.pipeline.1.type',
      'transforms Resize data.train.dataset.pipeline.1.transforms.0.type',
      'optimizers SGD optimizer.type',
      'optimizerConstructors DefaultOptimizerConstructor optimizer.constructor',
      'lrSchedulers poly lr_config.policy',
      'hooks TextLoggerHook log_config.hooks.0.type',
      'hooks CheckpointHook checkpoint_config',
      'hooks EvalHook evaluation',
      'metrics mIoU evaluation.metric.0',
      'metrics mDice evaluation.metric.1',
      'hooks TensorboardLoggerHook custom_hooks.0.type',
    ]);
  });

  it("an optimizer's own `constructor` names the optimizer constructor; 'auto' is no backend type", () => {
    const found = configTypeRequirements({ backend: 'auto', optimizer: { type: 'AdamW', constructor: 'LayerDecayConstructor' } });
    expect(found).to.deep.equal([
      { registry: 'optimizers', type: 'AdamW', path: 'optimizer.type' },
      { registry: 'optimizerConstructors', type: 'LayerDecayConstructor', path: 'optimizer.constructor' },
    ]);
  });
});
