// The TF.js export and the high-level API: exportTfjs writes a TF.js weights manifest with shards and the
// segkit metadata; read back through core's browser-safe runtime (plugin objects, no Node resolution) it
// segments like inferenceSegmentor. initSegmentor takes classes and palette from the checkpoint.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import {
  createRuntimeKernel,
  exportTfjs,
  inferenceSegmentor,
  initSegmentor,
  readTfjsExport,
  saveCheckpoint,
  segmentorFromTfjsArtifacts,
  type SegkitPlugin,
  type SegmentorHandle,
} from '@segkit/core';

const root = path.resolve(__dirname, '..', '..');
const DEMO_CONFIG = path.join(root, 'configs', 'demo', 'unet-s5-d16_tricks_64x64_synthetic-drive.ts');
const quiet = { info: () => undefined, warn: () => undefined };

/** The plugin objects a browser bundle would import for the demo model. */
function runtimePlugins(): SegkitPlugin[] {
  const names = ['@segkit/backbone-unet', '@segkit/head-fcn', '@segkit/loss-cross-entropy', '@segkit/loss-dice'];
  return [...names.map((name) => (require(name) as { plugin: SegkitPlugin }).plugin), (require('@segkit/transforms/runtime') as { plugin: SegkitPlugin }).plugin];
}

/** A deterministic RGBA image, like a canvas's ImageData, of another size than the pipeline's 128×128. */
function testImage(width: number, height: number): { data: Uint8ClampedArray; width: number; height: number } {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      const vessel = Math.abs(Math.sin(x / 9) * 40 - (y - height / 2)) < 4;
      data.set([vessel ? 90 : 200 + ((x * 7) % 40), vessel ? 30 : 90 + ((y * 5) % 30), 40, 255], p);
    }
  }
  return { data, width, height };
}

describe('TF.js export (exportTfjs) read by the browser-safe runtime', function () {
  this.timeout(300_000);
  let dir: string;
  let handle: SegmentorHandle;
  let tensorsBefore: number;

  before(async () => {
    tensorsBefore = tf.memory().numTensors;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-tfjs-export-'));
    // segkit's native backend (the one `auto` picks) keeps the test short; after() goes back to cpu.
    const fresh = await initSegmentor(DEMO_CONFIG, undefined, { backend: 'native', logger: quiet });
    // A checkpoint with the classes and palette a training run records (meta.CLASSES / meta.PALETTE).
    await saveCheckpoint(path.join(dir, 'demo.safetensors'), fresh.model as never, undefined, { iter: 7, CLASSES: ['bg', 'vessel'], PALETTE: [[1, 2, 3], [250, 20, 10]] });
    fresh.dispose();
    handle = await initSegmentor(DEMO_CONFIG, path.join(dir, 'demo.safetensors'), { backend: 'native', logger: quiet });
  });

  after(async () => {
    handle?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
    expect(tf.memory().numTensors, 'tensors left').to.equal(tensorsBefore);
    await tf.setBackend('cpu');
  });

  it('initSegmentor takes classes and palette from the checkpoint; inferenceSegmentor returns them with labels, logits and probabilities', async () => {
    expect(handle.classes).to.deep.equal(['bg', 'vessel']);
    expect(handle.palette).to.deep.equal([[1, 2, 3], [250, 20, 10]]);
    const result = await inferenceSegmentor(handle, testImage(100, 90), { logits: true, probabilities: true });
    expect(result.labels.shape).to.deep.equal([90, 100]);
    expect(result.logits!.shape).to.deep.equal([90, 100, 2]);
    expect(result.classes).to.deep.equal(['bg', 'vessel']);
    expect(result.palette).to.deep.equal([[1, 2, 3], [250, 20, 10]]);
    for (const p of [0, 4321, 8999]) {
      const [a, b] = [result.logits!.data[2 * p]!, result.logits!.data[2 * p + 1]!];
      // softmax of two logits: p1 = 1 / (1 + e^(a − b)); the label is the larger logit.
      expect(result.probabilities!.data[2 * p + 1]).to.be.closeTo(1 / (1 + Math.exp(a - b)), 1e-6);
      expect(result.probabilities!.data[2 * p]! + result.probabilities!.data[2 * p + 1]!).to.be.closeTo(1, 1e-6);
      expect(result.labels.data[p]).to.equal(b > a ? 1 : 0);
    }
    // A tensor [H,W,3] RGB gives the same labels as the RGBA pixels.
    const rgba = testImage(100, 90);
    const rgb = tf.tensor3d(Float32Array.from(rgba.data.filter((_, i) => i % 4 !== 3)), [90, 100, 3]);
    const fromTensor = await inferenceSegmentor(handle, rgb);
    rgb.dispose();
    expect(Array.from(fromTensor.labels.data)).to.deep.equal(Array.from(result.labels.data));
  });

  it('writes model.json in TF.js layout (weightsManifest, shards of at most 4 MiB) with the segkit metadata', async () => {
    const out = path.join(dir, 'tfjs');
    const report = await exportTfjs(handle, out, { output: 'logits', bakeNormalization: true });
    const modelJson = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
    expect(modelJson.format).to.equal('segkit-segmentor');
    const [group] = modelJson.weightsManifest;
    expect(report.files.map((f) => path.basename(f))).to.deep.equal(['model.json', ...group.paths]);
    const shardBytes = group.paths.map((p: string) => fs.statSync(path.join(out, p)).size);
    expect(Math.max(...shardBytes)).to.be.at.most(4 * 1024 * 1024);
    // Every weight is float32 or int32: 4 bytes per element, all of them in the shards.
    const elements = group.weights.reduce((sum: number, w: { shape: number[] }) => sum + w.shape.reduce((a, b) => a * b, 1), 0);
    expect(shardBytes.reduce((a: number, b: number) => a + b, 0)).to.equal(4 * elements);
    const names = group.weights.map((w: { name: string }) => w.name);
    expect(names).to.include('decode_head.conv_seg.weight');
    expect(names.some((n: string) => n.startsWith('auxiliary_head.'))).to.equal(false);
    const meta = modelJson.userDefinedMetadata.segkit;
    expect(meta.plugins).to.deep.equal(['@segkit/backbone-unet', '@segkit/head-fcn', '@segkit/loss-cross-entropy', '@segkit/loss-dice', '@segkit/transforms']);
    expect(meta.model.decode_head.sampler).to.equal(undefined);
    expect(meta.model.auxiliary_head).to.equal(undefined);
    expect(meta.model.decode_head.loss_decode[0].class_weight).to.deep.equal([0.8, 1.6]);
    expect(meta.testCfg).to.deep.equal({ mode: 'slide', crop_size: [64, 64], stride: [42, 42] });
    expect(meta.pipeline[0].type).to.equal('MultiScaleFlipAug');
    expect(meta.pipeline[0].transforms.map((t: { type: string }) => t.type)).to.deep.equal(['Resize', 'RandomFlip', 'Normalize', 'ImageToTensor', 'Collect']);
    expect(meta.classes).to.deep.equal(['bg', 'vessel']);
    expect(meta.palette).to.deep.equal([[1, 2, 3], [250, 20, 10]]);
  });

  it('read back with a runtime kernel of plugin objects, it segments exactly like inferenceSegmentor', async () => {
    const out = path.join(dir, 'tfjs');
    const kernel = await createRuntimeKernel({ plugins: runtimePlugins(), logger: quiet });
    const exported = segmentorFromTfjsArtifacts(await readTfjsExport(path.join(out, 'model.json')), kernel, 'model.json');
    try {
      for (const [width, height] of [[100, 90], [48, 64]] as const) {
        const image = testImage(width, height);
        const expected = await inferenceSegmentor(handle, image, { logits: true });
        const got = await exported.segment(image);
        expect(got.labels.shape).to.deep.equal([height, width]);
        expect(Array.from(got.labels.data)).to.deep.equal(Array.from(expected.labels.data));
        let worst = 0;
        for (let i = 0; i < expected.logits!.data.length; i++) worst = Math.max(worst, Math.abs(got.logits!.data[i]! - expected.logits!.data[i]!));
        expect(worst).to.be.at.most(1e-5);
        expect(new Set(got.labels.data).size, 'both classes occur').to.equal(2);
      }
    } finally {
      exported.dispose();
    }
  });

  it('--input-size runs the network at that size: the label map keeps the image size', async () => {
    const out = path.join(dir, 'tfjs-fixed');
    const report = await exportTfjs(handle, out, { inputSize: [64, 64], output: 'labels', bakeNormalization: true });
    expect(report).to.deep.include({ inputSize: [64, 64], output: 'labels' });
    const kernel = await createRuntimeKernel({ plugins: runtimePlugins(), logger: quiet });
    const exported = segmentorFromTfjsArtifacts(await readTfjsExport(path.join(out, 'model.json')), kernel);
    try {
      const got = await exported.segment(testImage(100, 90));
      expect(got.labels.shape).to.deep.equal([90, 100]);
      expect(got.logits).to.equal(undefined);
    } finally {
      exported.dispose();
    }
  });

  it('bad exports and imports are one clear error each', async () => {
    const out = path.join(dir, 'tfjs');
    const fail = async (run: () => unknown): Promise<string> => {
      try {
        await run();
      } catch (error) {
        expect((error as Error).name).to.equal('SegkitError');
        return (error as Error).message;
      }
      throw new Error('expected a SegkitError');
    };
    expect(await fail(() => exportTfjs(handle, path.join(dir, 'x'), { output: 'logits', bakeNormalization: false }))).to.match(/always carries the test pipeline with its Normalize step/);
    const withoutDice = await createRuntimeKernel({ plugins: runtimePlugins().filter((p) => p.name !== '@segkit/loss-dice'), logger: quiet });
    expect(await fail(async () => segmentorFromTfjsArtifacts(await readTfjsExport(path.join(out, 'model.json')), withoutDice, 'demo/model.json'))).to.match(
      /^demo\/model\.json: the model needs the plugins @segkit\/loss-dice; import them and pass them in `plugins`/,
    );
    const artifacts = await readTfjsExport(path.join(out, 'model.json'));
    expect(await fail(() => segmentorFromTfjsArtifacts({ ...artifacts, format: 'layers-model' }, withoutDice, 'm.json'))).to.match(/^m\.json: not a segkit TF\.js export \(format is "layers-model"/);
    const broken = path.join(dir, 'broken');
    fs.mkdirSync(broken);
    fs.copyFileSync(path.join(out, 'model.json'), path.join(broken, 'model.json'));
    expect(await fail(() => readTfjsExport(path.join(broken, 'model.json')))).to.match(/weight shard 'group1-shard1of2\.bin' not found beside it/);
    expect(await fail(() => readTfjsExport(path.join(dir, 'nowhere', 'model.json')))).to.match(/cannot read a TF\.js model\.json \(not found\)/);
  });
});
