import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { nn } from '../src';
import {
  checkpointCacheDir,
  detectStateDictKind,
  expectedHashPrefix,
  fetchCheckpoint,
  loadCheckpoint,
  loadPretrainedWeights,
  mapImageNetBackbone,
  pretrainedFromInitCfg,
  resolveCheckpointUrl,
  saveTorchCheckpoint,
  reviseKeys,
  segkitHome,
  selectPrefix,
  writeTorchCheckpoint,
  type TensorData,
} from '../src/checkpoint';
import { errorMessage, recordingLogger } from '../src/testing';

const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'torch');
const TINY = fs.readFileSync(path.join(FIXTURES, 'tiny_model.pth'));
const sha256 = (bytes: Buffer) => crypto.createHash('sha256').update(bytes).digest('hex');

/** An HTTP server on 127.0.0.1 serving `routes` (path → body, or a redirect target), counting requests. */
async function localServer(routes: Record<string, Buffer | { redirect: string }>): Promise<{ base: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const route = routes[req.url ?? ''];
    if (!route) {
      res.writeHead(404).end('not found');
    } else if (Buffer.isBuffer(route)) {
      res.writeHead(200, { 'content-length': route.length, 'content-type': 'application/octet-stream' }).end(route);
    } else {
      res.writeHead(302, { location: route.redirect }).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A fresh SEGKIT_HOME whose open_mmlab.json points `resnet50_v1c` at `url` (as MMCV reads $MMCV_HOME/open_mmlab.json). */
function homeWithModelZoo(url?: string): { env: NodeJS.ProcessEnv; home: string } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-home-'));
  if (url) fs.writeFileSync(path.join(home, 'open_mmlab.json'), JSON.stringify({ resnet50_v1c: url }));
  return { env: { SEGKIT_HOME: home }, home };
}

describe('checkpoint: model-zoo names and the cache', () => {
  it('puts the cache under $SEGKIT_HOME, else $XDG_CACHE_HOME/segkit, else ~/.cache/segkit', () => {
    expect(checkpointCacheDir({ SEGKIT_HOME: '/data/sk', XDG_CACHE_HOME: '/x' })).to.equal('/data/sk/checkpoints');
    expect(checkpointCacheDir({ XDG_CACHE_HOME: '/x' })).to.equal('/x/segkit/checkpoints');
    expect(segkitHome({})).to.equal(path.join(os.homedir(), '.cache', 'segkit'));
  });

  it("resolves MMCV's open-mmlab:// and torchvision:// names, and suggests the nearest for a typo", async () => {
    const env = {};
    expect(resolveCheckpointUrl('open-mmlab://resnet50_v1c', env)).to.equal('https://download.openmmlab.com/pretrain/third_party/resnet50_v1c-2cccc1ad.pth');
    expect(resolveCheckpointUrl('openmmlab://resnet101_v1c', env)).to.equal('https://download.openmmlab.com/pretrain/third_party/resnet101_v1c-e67eebb6.pth');
    expect(resolveCheckpointUrl('torchvision://resnet50', env)).to.equal('https://download.pytorch.org/models/resnet50-0676ba61.pth');
    expect(resolveCheckpointUrl('torchvision://ResNet50_Weights.IMAGENET1K_V2', env)).to.equal('https://download.pytorch.org/models/resnet50-11ad3fa6.pth');
    expect(resolveCheckpointUrl('https://download.openmmlab.com/mmsegmentation/v0.5/x-1234abcd.pth', env)).to.equal('https://download.openmmlab.com/mmsegmentation/v0.5/x-1234abcd.pth');
    expect(await errorMessage(() => resolveCheckpointUrl('open-mmlab://resnet50_v1', env))).to.contain("unknown open-mmlab:// model 'resnet50_v1' (did you mean 'resnet50_v1c'?)");
    expect(expectedHashPrefix('resnet50_v1c-2cccc1ad.pth')).to.equal('2cccc1ad');
    expect(expectedHashPrefix('pspnet_r50-d8_512x1024_40k_cityscapes_20200605_003338-2966598c.pth')).to.equal('2966598c');
    expect(expectedHashPrefix('latest.pth')).to.equal(null);
  });

  it('offline: a cached checkpoint is used; an absent one is an error naming the URL and the cache path', async () => {
    const { env, home } = homeWithModelZoo();
    const target = path.join(home, 'checkpoints', 'resnet50_v1c-2cccc1ad.pth');
    const message = await errorMessage(() => fetchCheckpoint('open-mmlab://resnet50_v1c', { env, offline: true, progress: null }));
    expect(message).to.contain('downloads are off (offline)').and.to.contain('https://download.openmmlab.com/pretrain/third_party/resnet50_v1c-2cccc1ad.pth').and.to.contain(`put it at ${target}`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, TINY);
    expect(await fetchCheckpoint('open-mmlab://resnet50_v1c', { env, offline: true, progress: null })).to.equal(target);
    expect(await fetchCheckpoint('/some/local.pth', { env, offline: true })).to.equal('/some/local.pth');
    fs.rmSync(home, { recursive: true });
  });

  it('downloads open-mmlab:// from a local server into the cache (hash verified, progress shown), then works offline', async () => {
    const before = tf.memory().numTensors;
    const name = `resnet50_v1c-${sha256(TINY).slice(0, 8)}.pth`;
    const server = await localServer({ [`/pretrain/${name}`]: TINY });
    const { env, home } = homeWithModelZoo(`${server.base}/pretrain/${name}`);
    const progress = new PassThrough();
    const chunks: Buffer[] = [];
    progress.on('data', (chunk: Buffer) => chunks.push(chunk));
    try {
      const file = await fetchCheckpoint('open-mmlab://resnet50_v1c', { env, progress });
      expect(file).to.equal(path.join(home, 'checkpoints', name));
      expect(fs.readFileSync(file).equals(TINY)).to.equal(true);
      expect(fs.readdirSync(path.dirname(file))).to.deep.equal([name]);
      const log = Buffer.concat(chunks).toString();
      expect(log).to.contain(`downloading ${server.base}/pretrain/${name} to ${file}`).and.to.match(/downloaded 0\.0 MB in \d+\.\d s/);
    } finally {
      await server.close();
    }
    // The server is gone: the cache serves the same name, and the weights load into a model.
    const model = new nn.Sequential(new nn.Conv2d(3, 4, [3, 2], { padding: [1, 0] }), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.Conv2d(4, 2, 1)).eval();
    const report = await loadCheckpoint(model, 'open-mmlab://resnet50_v1c', { env, offline: true, strict: true, logger: recordingLogger() });
    expect(report.file).to.equal(path.join(home, 'checkpoints', name));
    expect(server.requests).to.deep.equal([`/pretrain/${name}`]);
    model.dispose();
    fs.rmSync(home, { recursive: true });
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });

  it('follows a redirect; a hash mismatch deletes the download and leaves the cache empty', async () => {
    const wrongName = 'resnet50_v1c-00000000.pth';
    const server = await localServer({ '/old': { redirect: '/new/tiny.pth' }, '/new/tiny.pth': TINY, [`/${wrongName}`]: TINY });
    try {
      const redirected = homeWithModelZoo(`${server.base}/old`);
      const file = await fetchCheckpoint('open-mmlab://resnet50_v1c', { env: redirected.env, progress: null });
      expect(path.basename(file)).to.equal('old');
      expect(fs.readFileSync(file).equals(TINY)).to.equal(true);
      fs.rmSync(redirected.home, { recursive: true });

      const corrupt = homeWithModelZoo(`${server.base}/${wrongName}`);
      const message = await errorMessage(() => fetchCheckpoint('open-mmlab://resnet50_v1c', { env: corrupt.env, progress: null }));
      expect(message).to.contain(`is corrupt: its sha256 is ${sha256(TINY)}, the name promises 00000000`);
      expect(fs.readdirSync(path.join(corrupt.home, 'checkpoints'))).to.deep.equal([]);
      fs.rmSync(corrupt.home, { recursive: true });
    } finally {
      await server.close();
    }
  });

  it('an HTTP error or an unreachable server is a clear error naming where to put the file', async () => {
    const server = await localServer({});
    const missing = homeWithModelZoo(`${server.base}/absent-12345678.pth`);
    const notFound = await errorMessage(() => fetchCheckpoint('open-mmlab://resnet50_v1c', { env: missing.env, progress: null }));
    expect(notFound).to.contain('failed (HTTP 404)').and.to.contain(`put it at ${path.join(missing.home, 'checkpoints', 'absent-12345678.pth')}`);
    await server.close();
    // Nothing listens on the port any more.
    const unreachable = await errorMessage(() => fetchCheckpoint(`${server.base}/gone.pth`, { env: missing.env, progress: null }));
    expect(unreachable).to.contain(`downloading ${server.base}/gone.pth failed`).and.to.contain('with no network, download');
    expect(fs.readdirSync(path.join(missing.home, 'checkpoints'))).to.deep.equal([]);
    fs.rmSync(missing.home, { recursive: true });
  });
});

describe('checkpoint: MMCV / torchvision key mapping', () => {
  const tensor = (shape: number[], fill = 1): TensorData => ({ dtype: 'float32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill) });

  it('recognises ImageNet V1c, torchvision ResNet and segmentor state dicts', () => {
    expect(detectStateDictKind(['stem.0.weight', 'stem.1.weight', 'layer1.0.conv1.weight', 'fc.weight'])).to.equal('imagenet-resnet-v1c');
    expect(detectStateDictKind(['conv1.weight', 'bn1.weight', 'layer1.0.conv1.weight', 'fc.weight', 'fc.bias'])).to.equal('imagenet-resnet');
    expect(detectStateDictKind(['backbone.conv1.weight', 'decode_head.conv_seg.weight'])).to.equal('segmentor');
    expect(detectStateDictKind(['0.weight'])).to.equal('other');
  });

  it('maps ImageNet backbones to backbone.* and drops fc.*; strips module.; selects an init_cfg prefix', async () => {
    const torchvision = new Map([
      ['conv1.weight', 1],
      ['bn1.running_mean', 2],
      ['layer4.2.bn3.num_batches_tracked', 3],
      ['fc.weight', 4],
      ['fc.bias', 5],
    ]);
    const mapped = mapImageNetBackbone(torchvision);
    expect([...mapped.tensors.keys()]).to.deep.equal(['backbone.conv1.weight', 'backbone.bn1.running_mean', 'backbone.layer4.2.bn3.num_batches_tracked']);
    expect(mapped.dropped).to.deep.equal(['fc.weight', 'fc.bias']);
    expect([...reviseKeys(new Map([['module.backbone.stem.0.weight', 1], ['decode_head.module.x', 2]])).keys()]).to.deep.equal(['backbone.stem.0.weight', 'decode_head.module.x']);
    const segmentor = new Map([['backbone.layer1.0.conv1.weight', 1], ['decode_head.conv_seg.bias', 2]]);
    expect([...selectPrefix(segmentor, 'backbone', 'zoo.pth').entries()]).to.deep.equal([['layer1.0.conv1.weight', 1]]);
    expect([...selectPrefix(segmentor, 'backbone.', 'zoo.pth').keys()]).to.deep.equal(['layer1.0.conv1.weight']);
    expect(await errorMessage(() => selectPrefix(segmentor, 'backbon', 'zoo.pth'))).to.equal("zoo.pth: no key starts with the prefix 'backbon.' (top-level names: backbone, decode_head; did you mean 'backbone'?)");
  });

  it('loads an open-mmlab V1c-style checkpoint into the backbone of a segmentor (stem, layer1; fc dropped)', async () => {
    const before = tf.memory().numTensors;
    class Backbone extends nn.Module {
      constructor() {
        super();
        this.registerModule('stem', new nn.Sequential(new nn.Conv2d(3, 2, 3, { bias: false }), new nn.BatchNorm2d(2)));
        this.registerModule('layer1', new nn.Sequential(new nn.Conv2d(2, 2, 1, { bias: false })));
      }
    }
    class Segmentor extends nn.Module {
      constructor() {
        super();
        this.registerModule('backbone', new Backbone());
        this.registerModule('decode_head', new nn.Conv2d(2, 5, 1));
      }
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-v1c-'));
    const file = path.join(dir, 'resnet_v1c-12345678.pth');
    // OIHW [2, 3, 3, 3] holding o·27 + i·9 + kh·3 + kw.
    const stem: TensorData = { dtype: 'float32', shape: [2, 3, 3, 3], data: Float32Array.from({ length: 54 }, (_, v) => v) };
    writeTorchCheckpoint(
      file,
      new Map<string, TensorData>([
        ['stem.0.weight', stem],
        ['stem.1.weight', tensor([2], 0.5)],
        ['stem.1.bias', tensor([2], 0.25)],
        ['stem.1.running_mean', tensor([2], 0.1)],
        ['stem.1.running_var', tensor([2], 2)],
        ['stem.1.num_batches_tracked', { dtype: 'int32', shape: [], data: Int32Array.from([5]) }],
        ['layer1.0.weight', tensor([2, 2, 1, 1], 3)],
        ['fc.weight', tensor([10, 2])],
        ['fc.bias', tensor([10])],
      ]),
    );
    const model = new Segmentor();
    const logger = recordingLogger();
    const report = await loadCheckpoint(model, file, { logger });
    expect(report.notes).to.deep.equal(['ImageNet classifier dropped: fc.weight, fc.bias']);
    expect(report.unexpectedKeys).to.deep.equal([]);
    expect(report.missingKeys).to.deep.equal(['decode_head.weight', 'decode_head.bias']);
    const weights = model.stateDict();
    // HWIO [kh, kw, i, o] of the stem conv holds o·27 + i·9 + kh·3 + kw.
    const hwio = Array.from(weights.get('backbone.stem.0.weight')!.dataSync());
    expect(weights.get('backbone.stem.0.weight')!.shape).to.deep.equal([3, 3, 3, 2]);
    expect(hwio[((1 * 3 + 2) * 3 + 1) * 2 + 1]).to.equal(1 * 27 + 1 * 9 + 1 * 3 + 2);
    expect(Array.from(weights.get('backbone.stem.1.running_var')!.dataSync())).to.deep.equal([2, 2]);
    expect(Array.from(weights.get('backbone.stem.1.num_batches_tracked')!.dataSync())).to.deep.equal([5]);
    expect(Array.from(weights.get('backbone.layer1.0.weight')!.dataSync())).to.deep.equal([3, 3, 3, 3]);
    // Loaded straight into the backbone module (init_cfg on the backbone), the keys need no prefix.
    const backbone = new Backbone();
    const direct = await loadCheckpoint(backbone, file, { strict: true });
    expect(direct.loadedKeys).to.have.length(7);
    // A full segmentor checkpoint's backbone, selected with init_cfg.prefix, loads into the backbone too.
    const full = path.join(dir, 'segmentor.pth');
    await saveTorchCheckpoint(full, model);
    const selected = new Backbone();
    const fromFull = await loadCheckpoint(selected, full, { prefix: 'backbone.', strict: true });
    expect(fromFull.loadedKeys).to.have.length(7);
    // From the model config: `pretrained` goes to the backbone, a head's init_cfg with its prefix to the head.
    const configured = new Segmentor();
    const reports = await loadPretrainedWeights(configured, {
      pretrained: file,
      backbone: { type: 'ResNetV1c' },
      decode_head: { type: 'FCNHead', init_cfg: { type: 'Pretrained', checkpoint: full, prefix: 'decode_head.' } },
    });
    expect(reports.map((r) => [r.file, r.loadedKeys.length, r.missingKeys, r.unexpectedKeys])).to.deep.equal([
      [file, 7, [], []],
      [full, 2, [], []],
    ]);
    expect(Array.from(configured.stateDict().get('decode_head.bias')!.dataSync())).to.deep.equal(Array.from(model.stateDict().get('decode_head.bias')!.dataSync()));
    expect(await errorMessage(() => loadPretrainedWeights(configured, { pretrained: file, backbone: { init_cfg: { type: 'Pretrained', checkpoint: file } } }))).to.contain(
      'model: pretrained and backbone.init_cfg cannot be specified at the same time',
    );
    configured.dispose();
    model.dispose();
    backbone.dispose();
    selected.dispose();
    fs.rmSync(dir, { recursive: true });
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });

  it("reads init_cfg's Pretrained entry (a dict or a list) and rejects a malformed one with its config path", async () => {
    expect(pretrainedFromInitCfg({ type: 'Pretrained', checkpoint: 'open-mmlab://resnet50_v1c' }, 'model.backbone.init_cfg')).to.deep.equal({ checkpoint: 'open-mmlab://resnet50_v1c' });
    expect(pretrainedFromInitCfg([{ type: 'Kaiming', layer: 'Conv2d' }, { type: 'Pretrained', checkpoint: 'zoo.pth', prefix: 'backbone.' }], 'model.backbone.init_cfg')).to.deep.equal({
      checkpoint: 'zoo.pth',
      prefix: 'backbone.',
    });
    expect(pretrainedFromInitCfg({ type: 'Kaiming' }, 'x')).to.equal(null);
    expect(pretrainedFromInitCfg(undefined, 'x')).to.equal(null);
    expect(await errorMessage(() => pretrainedFromInitCfg({ type: 'Pretrained' }, 'model.backbone.init_cfg'))).to.equal(
      'model.backbone.init_cfg.checkpoint: expected a checkpoint path or URL, got undefined',
    );
  });
});
