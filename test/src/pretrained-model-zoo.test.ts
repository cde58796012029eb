import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import {
  Hook,
  SegkitError,
  checkpointCacheDir,
  definePlugin,
  hwioToOihw,
  loadConfigAndKernel,
  loadPretrainedWeights,
  oihwToHwio,
  readTorchCheckpoint,
  train,
  writeTorchCheckpoint,
  z,
  type Kernel,
  type LoadedConfig,
  type RunnerView,
  type StoredTensor,
  type TorchCheckpoint,
} from '@segkit/core';
import { repo } from './tiny-config';

/** The backbone's weights as `beforeRun` sees them: after `model.pretrained` was loaded, before any training step. */
class BackboneSnapshotHook extends Hook {
  readonly name = 'BackboneSnapshotHook';
  static snapshot = new Map<string, { shape: number[]; values: ArrayLike<number> }>();
  override async beforeRun(runner: RunnerView): Promise<void> {
    BackboneSnapshotHook.snapshot = new Map();
    for (const [key, variable] of runner.model.stateDict()) {
      if (key.startsWith('backbone.')) BackboneSnapshotHook.snapshot.set(key, { shape: [...variable.shape], values: (await variable.data()) as ArrayLike<number> });
    }
  }
}
const snapshotPlugin = definePlugin({
  name: 'backbone-snapshot',
  version: '0.0.0',
  components: { hooks: [{ type: 'BackboneSnapshotHook', schema: z.object({}), create: () => new BackboneSnapshotHook() }] },
});

/**
 * An FCN on ResNetV1c-18 as MMSegmentation configures it (`pretrained: 'open-mmlab://resnet18_v1c'`, SyncBN mapped
 * to BN), with the backbone at its real widths (so the checkpoint has the real resnet18_v1c keys and shapes) but
 * without dilation and with a narrow head, for one iteration on 32×32 crops of generated DRIVE-like data.
 */
function fcnR18Config(dataRoot: string): Record<string, unknown> {
  const norm_cfg = { type: 'SyncBN', requires_grad: true };
  return {
    _base_: [
      path.join(repo, 'configs/_base_/datasets/synthetic_drive.ts'),
      path.join(repo, 'configs/_base_/default_runtime.ts'),
      path.join(repo, 'configs/_base_/schedules/schedule_40k.ts'),
    ],
    plugins: ['@segkit/backbone-resnet', '@segkit/head-fcn', '@segkit/loss-cross-entropy'],
    model: {
      type: 'EncoderDecoder',
      pretrained: 'open-mmlab://resnet18_v1c',
      backbone: { type: 'ResNetV1c', depth: 18, num_stages: 4, out_indices: [0, 1, 2, 3], norm_cfg, norm_eval: false, style: 'pytorch' },
      decode_head: { type: 'FCNHead', in_channels: 512, in_index: 3, channels: 8, num_convs: 1, concat_input: false, num_classes: 2, norm_cfg, align_corners: false, loss_decode: { type: 'CrossEntropyLoss', loss_weight: 1.0 } },
      train_cfg: {},
      test_cfg: { mode: 'whole' },
    },
    runner: { max_iters: 1 },
    checkpoint_config: null,
    log_config: { interval: 1, hooks: [] },
    custom_hooks: [{ type: 'BackboneSnapshotHook' }],
    data: {
      samples_per_gpu: 2,
      workers_per_gpu: 0,
      train: {
        dataset: {
          data_root: dataRoot,
          pipeline: [
            { type: 'LoadImageFromFile' },
            { type: 'LoadAnnotations' },
            { type: 'RandomCrop', crop_size: [32, 32] },
            { type: 'Normalize', mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true },
            { type: 'DefaultFormatBundle' },
            { type: 'Collect', keys: ['img', 'gt_semantic_seg'] },
          ],
        },
      },
      val: { data_root: dataRoot },
      test: { data_root: dataRoot },
    },
    seed: 11,
  };
}

/** An HTTP server on 127.0.0.1 serving one file, recording the requests. */
async function serveFile(route: string, body: Buffer): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === route) res.writeHead(200, { 'content-length': body.length }).end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${route}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("model.pretrained: 'open-mmlab://resnet18_v1c' from a local model zoo, the cache, and offline", function () {
  this.timeout(600000);
  let dir: string;
  let configFile: string;
  let zooFile: string;
  let zooName: string;
  let zoo: TorchCheckpoint;
  const savedEnv = { SEGKIT_HOME: process.env.SEGKIT_HOME, SEGKIT_OFFLINE: process.env.SEGKIT_OFFLINE };

  async function kernelAndConfig(): Promise<{ kernel: Kernel; config: LoadedConfig; lines: string[] }> {
    const lines: string[] = [];
    const { kernel, config } = await loadConfigAndKernel(configFile, { logger: { info: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`) } });
    await kernel.loadPlugin(snapshotPlugin);
    return { kernel, config, lines };
  }

  /** The backbone loaded in beforeRun equals the model-zoo file: every key, PyTorch's OIHW turned to HWIO. */
  function expectBackboneFromZoo(): void {
    const snapshot = BackboneSnapshotHook.snapshot;
    const expected = [...zoo.tensors.keys()].filter((key) => !key.startsWith('fc.')).map((key) => `backbone.${key}`);
    expect([...snapshot.keys()].sort()).to.deep.equal(expected.sort());
    for (const [key, tensor] of zoo.tensors) {
      if (key.startsWith('fc.')) continue;
      const hwio = tensor.shape.length === 4 ? oihwToHwio(tensor) : tensor;
      const loaded = snapshot.get(`backbone.${key}`)!;
      expect(loaded.shape, key).to.deep.equal(hwio.shape);
      expectSameValues(loaded.values, hwio.data, key);
    }
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-zoo-e2e-'));
    const { synthDrive } = require('@segkit/datasets') as { synthDrive: (o: object) => Promise<unknown> };
    await synthDrive({ out: path.join(dir, 'data'), count: 4, size: [64, 64], seed: 3 });
    configFile = path.join(dir, 'fcn_r18_tiny.json');
    fs.writeFileSync(configFile, JSON.stringify(fcnR18Config(path.join(dir, 'data'))));

    // The "ImageNet checkpoint": a segkit ResNetV1c-18 state dict in MMCV's layout and names (stem.*, layer1.* ...,
    // OIHW, int64 counters) plus a 1000-class fc, with every value moved off its initialisation so that a
    // backbone left untouched cannot pass for a loaded one.
    const { kernel } = await kernelAndConfig();
    const backbone = kernel.build('backbones', { type: 'ResNetV1c', depth: 18 }, { path: 'model.backbone' });
    const state = new Map<string, StoredTensor>();
    for (const [key, variable] of backbone.stateDict()) {
      const values = await variable.data();
      const data =
        variable.dtype === 'int32'
          ? Int32Array.from({ length: values.length }, () => 123)
          : key.endsWith('running_var')
            ? Float32Array.from(values, (_, i) => 1 + (i % 5) * 0.1)
            : Float32Array.from(values, (value, i) => value * 1.5 + 0.001 * ((i % 7) - 3));
      state.set(key, { dtype: variable.dtype === 'int32' ? 'int32' : 'float32', shape: [...variable.shape], data });
    }
    backbone.dispose();
    const torchLayout = new Map([...state].map(([key, tensor]) => [key, tensor.shape.length === 4 ? hwioToOihw(tensor) : tensor]));
    torchLayout.set('fc.weight', { dtype: 'float32', shape: [1000, 512], data: Float32Array.from({ length: 512000 }, (_, i) => (i % 13) * 0.01) });
    torchLayout.set('fc.bias', { dtype: 'float32', shape: [1000], data: new Float32Array(1000).fill(0.5) });
    const unnamed = path.join(dir, 'resnet18_v1c.pth');
    writeTorchCheckpoint(unnamed, torchLayout, { meta: { mmcv_version: '1.7.0' } });
    // Published as MMCV names its model-zoo files: `<name>-<first 8 hex digits of the sha256>.pth`.
    const bytes = fs.readFileSync(unnamed);
    zooName = `resnet18_v1c-${crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 8)}.pth`;
    zooFile = path.join(dir, zooName);
    fs.renameSync(unnamed, zooFile);
    zoo = await readTorchCheckpoint(zooFile);
    expect([...zoo.tensors.keys()].slice(0, 3)).to.deep.equal(['stem.0.weight', 'stem.1.weight', 'stem.1.bias']);
  });

  after(() => {
    for (const [key, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('downloads it from a local server into $SEGKIT_HOME/checkpoints (hash verified), loads it into the backbone; a second run uses the cache', async () => {
    const server = await serveFile(`/pretrain/third_party/${zooName}`, fs.readFileSync(zooFile));
    const home = path.join(dir, 'home');
    fs.mkdirSync(home);
    // $SEGKIT_HOME/open_mmlab.json overrides the open-mmlab:// table, as MMCV reads $MMCV_HOME/open_mmlab.json.
    fs.writeFileSync(path.join(home, 'open_mmlab.json'), JSON.stringify({ resnet18_v1c: server.url }));
    process.env.SEGKIT_HOME = home;
    delete process.env.SEGKIT_OFFLINE;
    const cached = path.join(home, 'checkpoints', zooName);
    try {
      const { kernel, config, lines } = await kernelAndConfig();
      const before = tf.memory().numTensors;
      await train({ kernel, config, workDir: path.join(dir, 'work-download'), noValidate: true });
      expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
      expect(server.requests).to.deep.equal([`/pretrain/third_party/${zooName}`]);
      expect(fs.readFileSync(cached).equals(fs.readFileSync(zooFile))).to.equal(true);
      expect(fs.readdirSync(path.join(home, 'checkpoints'))).to.deep.equal([zooName]);
      expect(lines).to.include(`load checkpoint from open-mmlab://resnet18_v1c: ${cached}`);
      expect(lines).to.include(`${cached}: ImageNet classifier dropped: fc.weight, fc.bias`);
      // Every backbone key matched: no missing / unexpected-key report.
      expect(lines.filter((line) => line.includes('do not match'))).to.deep.equal([]);
      expectBackboneFromZoo();
    } finally {
      await server.close();
    }

    // (b) The server is gone: the second run finds the file in the cache.
    BackboneSnapshotHook.snapshot = new Map();
    const { kernel, config, lines } = await kernelAndConfig();
    const before = tf.memory().numTensors;
    await train({ kernel, config, workDir: path.join(dir, 'work-cached'), noValidate: true });
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
    expect(server.requests).to.have.length(1);
    expect(lines).to.include(`load checkpoint from open-mmlab://resnet18_v1c: ${cached}`);
    expectBackboneFromZoo();
  });

  it('offline with an empty cache: a clear error naming the URL and the cache path to put the file at', async () => {
    const home = path.join(dir, 'empty-home');
    process.env.SEGKIT_HOME = home;
    process.env.SEGKIT_OFFLINE = '1';
    const target = path.join(checkpointCacheDir(), 'resnet18_v1c-b5776b93.pth');
    expect(target).to.equal(path.join(home, 'checkpoints', 'resnet18_v1c-b5776b93.pth'));
    const message =
      `open-mmlab://resnet18_v1c: not in the checkpoint cache and downloads are off (offline: SEGKIT_OFFLINE is set); ` +
      `download https://download.openmmlab.com/pretrain/third_party/resnet18_v1c-b5776b93.pth and put it at ${target}`;
    const { kernel, config } = await kernelAndConfig();
    let error: unknown;
    try {
      await train({ kernel, config, workDir: path.join(dir, 'work-offline'), noValidate: true });
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(SegkitError);
    expect((error as Error).message).to.equal(message);

    // The library call, with `offline: true` instead of the environment, on a segmentor the kernel built.
    delete process.env.SEGKIT_OFFLINE;
    const before = tf.memory().numTensors;
    const model = kernel.build('segmentors', config.model, { path: 'model' });
    let libraryError: unknown;
    try {
      await loadPretrainedWeights(model, config.model as Record<string, unknown>, { offline: true });
    } catch (caught) {
      libraryError = caught;
    }
    expect((libraryError as Error).message).to.equal(message.replace(' (offline: SEGKIT_OFFLINE is set)', ' (offline)'));
    model.dispose();
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
    expect(fs.existsSync(path.join(home, 'checkpoints'))).to.equal(false);
  });
});

/** Element-wise equality of large arrays (chai's deep equality is far too slow for millions of values). */
function expectSameValues(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what}: length`).to.equal(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) expect(actual[i], `${what}[${i}]`).to.equal(expected[i]);
  }
}
