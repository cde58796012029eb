import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import * as ort from 'onnxruntime-node';
import { initSegmentor, inferenceSegmentor, saveCheckpoint, segmentorOnnxBytes, decodeOnnxModel, testPipelineNormalization, nn, type SegmentorHandle } from '@segkit/core';
import { recordingLogger } from '@segkit/core/testing';
import type { EncoderDecoder } from '@segkit/core';
import { repo, segkit } from './segkit-cli';

const UNET_DEMO = path.join(repo, 'configs/demo/unet-s5-d16_tricks_64x64_synthetic-drive.ts');
const PSPNET = path.join(repo, 'configs/pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.ts');
/**
 * PSPNet R50-D8 with every module type and all 16 bottlenecks (dilations 2 and 4, contract_dilation, the
 * deep stem, pool scales 1, 2, 3, 6, the FCN auxiliary head), narrowed so that the pure-JS reference runs in seconds.
 */
const NARROW_PSPNET = [
  'model.backbone.stem_channels=16',
  'model.backbone.base_channels=8',
  'model.decode_head.in_channels=256',
  'model.decode_head.channels=16',
  'model.auxiliary_head.in_channels=128',
  'model.auxiliary_head.channels=8',
];

/** Random weights beyond the init: BatchNorm statistics and affine parameters, and a wider `conv_seg`, so logits spread. */
function randomizeWeights(model: nn.Module): void {
  let seed = 11;
  tf.tidy(() => {
    for (const [name, variable] of model.stateDict()) {
      if (name.endsWith('running_mean') || name.endsWith('.bn.bias') || /\.bn\d?\.bias$|downsample\.1\.bias$|stem\.\d+\.bias$/.test(name)) variable.assign(tf.randomNormal(variable.shape, 0, 0.2, 'float32', seed++));
      else if (name.endsWith('running_var') || /\.bn\d?\.weight$|downsample\.1\.weight$|stem\.[147]\.weight$/.test(name)) variable.assign(tf.randomUniform(variable.shape, 0.5, 1.5, 'float32', seed++));
      else if (name.endsWith('conv_seg.weight')) variable.assign(tf.randomNormal(variable.shape, 0, 0.5, 'float32', seed++));
    }
  });
}

async function load(config: string, cfgOptions: string[] = []): Promise<SegmentorHandle> {
  const handle = await initSegmentor(config, undefined, { backend: 'cpu', cfgOptions, logger: recordingLogger() });
  randomizeWeights(handle.model);
  return handle;
}

async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes);
}

/** NHWC → NCHW float32 data. */
async function nchw(x: tf.Tensor4D): Promise<Float32Array> {
  const t = tf.transpose(x, [0, 3, 1, 2]);
  const data = (await t.data()) as Float32Array;
  t.dispose();
  return data;
}

/** onnxruntime's NCHW logits as NHWC. */
function nhwc(output: ort.Tensor): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(output.data as Float32Array, output.dims as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D);
}

/** max |a − b| / max |b| */
async function relativeError(actual: tf.Tensor, expected: tf.Tensor): Promise<number> {
  expect(actual.shape).to.deep.equal(expected.shape);
  const [a, e] = [(await actual.data()) as Float32Array, (await expected.data()) as Float32Array];
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < e.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - e[i]!));
    scale = Math.max(scale, Math.abs(e[i]!));
  }
  expect(scale).to.be.greaterThan(0);
  return diff / scale;
}

/**
 * Asserts labels equal the argmax of `logits` [N,H,W,C] at every pixel whose two best classes are more than
 * `margin` (relative to the logits' scale) apart; returns how many such pixels were compared.
 */
async function expectArgmax(labels: Int32Array, logits: tf.Tensor4D, margin = 1e-4): Promise<number> {
  const data = (await logits.data()) as Float32Array;
  const c = logits.shape[3];
  const scale = data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  let compared = 0;
  expect(labels.length).to.equal(data.length / c);
  for (let p = 0; p < labels.length; p++) {
    let best = 0;
    let second = -Infinity;
    for (let k = 1; k < c; k++) {
      const v = data[p * c + k]!;
      if (v > data[p * c + best]!) {
        second = data[p * c + best]!;
        best = k;
      } else if (v > second) second = v;
    }
    if (data[p * c + best]! - second <= margin * scale) continue;
    compared++;
    if (labels[p] !== best) expect.fail(`pixel ${p}: label ${labels[p]}, argmax ${best}`);
  }
  return compared;
}

/** Exports the handle's model, then compares onnxruntime's logits with segkit's whole-image inference at each size. */
async function expectLogitsMatch(handle: SegmentorHandle, sizes: [number, number][], inputSize?: [number, number]): Promise<void> {
  const before = tf.memory().numTensors;
  const { bytes } = await segmentorOnnxBytes(handle.model, { output: 'logits', normalization: null, inputSize });
  expect(tf.memory().numTensors, 'tensors left behind by the export').to.equal(before);
  const runtime = await session(bytes);
  for (const [h, w] of sizes) {
    const x = tf.randomNormal([1, h, w, 3], 0, 1, 'float32', h * w) as tf.Tensor4D;
    const expected = handle.model.inference(x, { mode: 'whole' });
    const { logits } = await runtime.run({ image: new ort.Tensor('float32', await nchw(x), [1, 3, h, w]) });
    const actual = nhwc(logits!);
    expect(await relativeError(actual, expected), `${h}×${w}`).to.be.at.most(1e-4);
    tf.dispose([x, expected, actual]);
  }
  await runtime.release();
}

describe('ONNX export of the shipped models, run in onnxruntime-node', function () {
  this.timeout(600000);

  describe('UNet-S5-D16 + FCN (the demo model)', () => {
    let handle: SegmentorHandle;
    before(async () => {
      handle = await load(UNET_DEMO, ['model.test_cfg={"mode":"whole"}']);
    });
    after(() => handle.dispose());

    it('logits within 1e-4 relative of segkit at 64×64 and 48×80 from one dynamic-size graph', async () => {
      await expectLogitsMatch(handle, [[64, 64], [48, 80]]);
    });

    it('labels with normalization baked in equal inferenceSegmentor on an RGBA image', async () => {
      const normalization = testPipelineNormalization(handle.config);
      expect(normalization).to.deep.equal({ mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true });
      const { bytes } = await segmentorOnnxBytes(handle.model, { output: 'labels', normalization, inputSize: [128, 128] });
      const [h, w] = [128, 128];
      const rgba = new Uint8Array(h * w * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 7919 + ((i >> 9) * 31)) % 256));
      const rgb = new Float32Array(3 * h * w);
      for (let p = 0; p < h * w; p++) for (let c = 0; c < 3; c++) rgb[c * h * w + p] = rgba[p * 4 + c]!;
      const runtime = await session(bytes);
      const { labels } = await runtime.run({ image: new ort.Tensor('float32', rgb, [1, 3, h, w]) });
      await runtime.release();
      expect(labels!.type).to.equal('int32');
      expect(labels!.dims).to.deep.equal([1, h, w]);
      const reference = await inferenceSegmentor(handle, { data: rgba, width: w, height: h });
      const onnxLabels = labels!.data as Int32Array;
      const same = reference.labels.data.reduce((n, label, i) => n + (label === onnxLabels[i] ? 1 : 0), 0);
      expect(same / (h * w), `${same} of ${h * w} pixels`).to.be.at.least(0.999);
      expect(new Set(onnxLabels).size, 'both classes occur').to.equal(2);
    });
  });

  describe('PSPNet R50-D8 (narrowed widths)', () => {
    let handle: SegmentorHandle;
    before(async () => {
      handle = await load(PSPNET, NARROW_PSPNET);
    });
    after(() => handle.dispose());

    it('logits within 1e-4 relative at 48×48 and 56×72 (overlapping pooling bins computed at run time)', async () => {
      await expectLogitsMatch(handle, [[48, 48], [56, 72]]);
    });

    it('a static 56×72 graph: same logits, and its labels output equals the argmax of segkit\'s logits', async () => {
      await expectLogitsMatch(handle, [[56, 72]], [56, 72]);
      const { bytes } = await segmentorOnnxBytes(handle.model, { output: 'labels', normalization: null, inputSize: [56, 72] });
      const x = tf.randomNormal([2, 56, 72, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
      const runtime = await session(bytes);
      const { labels } = await runtime.run({ image: new ort.Tensor('float32', await nchw(x), [2, 3, 56, 72]) });
      await runtime.release();
      const logits = handle.model.inference(x, { mode: 'whole' });
      const compared = await expectArgmax(labels!.data as Int32Array, logits);
      expect(compared).to.be.greaterThan(0.99 * 2 * 56 * 72);
      tf.dispose([x, logits]);
    });

    it('a one-channel (sigmoid) head: labels are sigmoid(logit) > threshold', async () => {
      const binary = await load(PSPNET, [
        ...NARROW_PSPNET,
        'model.decode_head.out_channels=1',
        'model.decode_head.threshold=0.4',
        'model.decode_head.num_classes=2',
        'model.decode_head.loss_decode={"type":"CrossEntropyLoss","use_sigmoid":true}',
      ]);
      try {
        const { bytes } = await segmentorOnnxBytes(binary.model, { output: 'labels', normalization: null });
        const x = tf.randomNormal([1, 40, 48, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
        const runtime = await session(bytes);
        const { labels } = await runtime.run({ image: new ort.Tensor('float32', await nchw(x), [1, 3, 40, 48]) });
        await runtime.release();
        const logits = binary.model.inference(x, { mode: 'whole' });
        const probabilities = (await tf.tidy(() => tf.sigmoid(logits)).data()) as Float32Array;
        const onnx = labels!.data as Int32Array;
        let compared = 0;
        probabilities.forEach((p, i) => {
          if (Math.abs(p - 0.4) < 1e-5) return;
          compared++;
          expect(onnx[i], `pixel ${i}, probability ${p}`).to.equal(p > 0.4 ? 1 : 0);
        });
        expect(compared).to.be.greaterThan(0.99 * 40 * 48);
        expect(new Set(onnx).size, 'both labels occur').to.equal(2);
        tf.dispose([x, logits]);
      } finally {
        binary.dispose();
      }
    });

    it('leaves the auxiliary head out and uses every ResNet block', async () => {
      const { bytes, operators } = await segmentorOnnxBytes(handle.model, { output: 'logits', normalization: null, inputSize: [48, 48] });
      const graph = (decodeOnnxModel(bytes) as { graph: { initializer: { name: string }[] } }).graph;
      const names = graph.initializer.map((t) => t.name);
      expect(names.some((n) => n.startsWith('auxiliary_head'))).to.equal(false);
      expect(names.filter((n) => /^backbone\.layer\d\.\d+\.conv3\.weight$/.test(n))).to.have.length(16);
      // 3 stem + 16·3 + 4 downsample convs, PPM 4 + bottleneck + conv_seg; every conv followed by BN except conv_seg.
      expect(operators.Conv).to.equal(3 + 48 + 4 + 4 + 1 + 1);
      expect(operators.BatchNormalization).to.equal(operators.Conv! - 1);
      expect((handle.model as EncoderDecoder).auxiliaryHeads).to.have.length(1);
    });
  });

  describe('segkit export (command line)', () => {
    let workDir: string;
    let handle: SegmentorHandle;
    let checkpoint: string;
    before(async () => {
      workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-export-'));
      handle = await load(UNET_DEMO);
      checkpoint = path.join(workDir, 'unet.safetensors');
      await saveCheckpoint(checkpoint, handle.model, undefined, { iter: 0 });
    });
    after(() => {
      handle.dispose();
      fs.rmSync(workDir, { recursive: true, force: true });
    });

    it('writes an .onnx whose labels match the checkpoint in segkit', async () => {
      const out = path.join(workDir, 'deploy', 'unet.onnx');
      const result = segkit(['export', UNET_DEMO, checkpoint, '--format', 'onnx', '--out', out, '--input-size', '32,48', '--output', 'labels', '--no-normalization', '--backend', 'cpu']);
      expect(result.stderr).to.include('note: the config\'s test_cfg is slide inference (crop_size 64×64, stride 42×42)');
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.include(`wrote ${out} (onnx, 32×48; input image [N,3,H,W] normalized as the test pipeline does; output labels [N,H,W] int32)`);
      const x = tf.randomNormal([1, 32, 48, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
      const runtime = await ort.InferenceSession.create(out);
      expect(runtime.inputNames).to.deep.equal(['image']);
      const { labels } = await runtime.run({ image: new ort.Tensor('float32', await nchw(x), [1, 3, 32, 48]) });
      await runtime.release();
      const logits = handle.model.inference(x, { mode: 'whole' });
      await expectArgmax(labels!.data as Int32Array, logits);
      tf.dispose([x, logits]);
    });

    it('bad input is one clear error', () => {
      const out = path.join(workDir, 'bad.onnx');
      const run = (...args: string[]) => segkit(['export', UNET_DEMO, checkpoint, '--out', out, '--backend', 'cpu', ...args]);
      expect(run('--format', 'onnx', '--input-size', '64').stderr.trim()).to.equal("segkit: --input-size: expected two positive integers H,W (e.g. 512,1024), got '64'");
      const indivisible = run('--format', 'onnx', '--input-size', '40,40');
      expect(indivisible.code).to.equal(1);
      expect(indivisible.stderr).to.include("segkit: model.backbone: the input size 40×40 must be divisible by UNet's total downsampling 16");
      const format = run('--format', 'bogus');
      expect(format.code).to.equal(2);
      expect(format.stderr).to.include("argument 'bogus' is invalid. Allowed choices are onnx");
      const missing = segkit(['export', UNET_DEMO, path.join(workDir, 'none.safetensors'), '--format', 'onnx', '--out', out, '--backend', 'cpu']);
      expect(missing.code).to.equal(1);
      expect(missing.stderr.trim()).to.equal(`segkit: export: checkpoint not found: ${path.join(workDir, 'none.safetensors')}`);
      expect(fs.existsSync(out)).to.equal(false);
    });
  });
});
