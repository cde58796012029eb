import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createKernel, nn, type Kernel } from '@segkit/core';
import { plugin } from '../src/index';

const LN2 = Math.log(2);
const EPS = 1.1920928955078125e-7;

function recorder() {
  const warnings: string[] = [];
  return { warnings, logger: { info: () => undefined, warn: (m: string) => warnings.push(m) } };
}

/** Runs `fn`, returns the shape and values of the tensor it yields and checks nothing leaked. */
function values(fn: () => tf.Tensor): { shape: number[]; data: number[] } {
  const before = tf.memory().numTensors;
  const out = fn();
  const result = { shape: out.shape, data: Array.from(out.dataSync()) };
  out.dispose();
  expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  return result;
}

/** The number `fn` yields (a 0-d or 1-element tensor), checking that nothing leaked. */
const value = (fn: () => tf.Tensor): number => values(fn).data[0]!;

/** The message a promise rejects with, or null when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<string | null> {
  return promise.then(
    () => null,
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
}

describe('loss-cross-entropy: CrossEntropyLoss', () => {
  let kernel: Kernel;
  let warnings: string[];
  const build = (cfg: Record<string, unknown>, extra: Record<string, unknown> = {}, at = 'model.decode_head.loss_decode') =>
    kernel.build('losses', { type: 'CrossEntropyLoss', ...cfg }, { path: at, parent: extra });

  beforeEach(async () => {
    const rec = recorder();
    warnings = rec.warnings;
    kernel = await createKernel({ plugins: [plugin], backend: 'cpu', logger: rec.logger });
  });

  it('gives ln 21 per pixel for 21 classes of equal logits', () => {
    const loss = build({ avg_non_ignore: true });
    const logits = tf.zeros([2, 2, 3, 21]);
    const labels = tf.tensor3d([[[0, 5, 20], [1, 2, 3]], [[4, 255, 7], [8, 9, 10]]], [2, 2, 3], 'int32');
    expect(value(() => loss.forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo(Math.log(21), 1e-5);
    const perPixel = values(() => loss.forward(logits, labels, { ignoreIndex: 255, reductionOverride: 'none' }));
    expect(perPixel.shape).to.deep.equal([2, 2, 3]);
    perPixel.data.forEach((v, i) => expect(v).to.be.closeTo(i === 7 ? 0 : Math.log(21), 1e-5));
    tf.dispose([logits, labels]);
  });

  it("reproduces SPEC's 0.x weighted mean: 40, not PyTorch's 200 (pred [100,-100], label 1, class_weight [0.8,0.2])", () => {
    const pred = tf.tensor2d([[100, -100]]);
    const label = tf.tensor1d([1], 'int32');
    expect(value(() => build({ class_weight: [0.8, 0.2] }).forward(pred, label))).to.be.closeTo(40, 1e-3);
    expect(value(() => build({}).forward(pred, label))).to.be.closeTo(200, 1e-3);
    // sigmoid path: one-hot [0,1], both element losses ≈ 100, mean over 2 elements
    expect(value(() => build({ use_sigmoid: true }).forward(pred, label))).to.be.closeTo(100, 1e-3);
    tf.dispose([pred, label]);
  });

  describe('softmax reductions (2 classes, equal logits: ln 2 per pixel; labels [0,1,1,255])', () => {
    let logits: tf.Tensor;
    let labels: tf.Tensor;
    beforeEach(() => {
      logits = tf.zeros([1, 1, 4, 2]);
      labels = tf.tensor3d([[[0, 1, 1, 255]]], [1, 1, 4], 'int32');
    });
    afterEach(() => tf.dispose([logits, labels]));

    it('mean divides by all pixels (ignored ones count); avg_non_ignore by the non-ignored count + ε', () => {
      expect(value(() => build({}).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((3 * LN2) / 4, 1e-6);
      expect(value(() => build({ avg_non_ignore: true }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((3 * LN2) / (3 + EPS), 1e-6);
    });

    it('class_weight multiplies each pixel by its class weight; the mean still divides by the pixel count', () => {
      // Σ = ln2·(0.8 + 0.2 + 0.2) = 1.2 ln2
      expect(value(() => build({ class_weight: [0.8, 0.2] }, { numClasses: 2 }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((1.2 * LN2) / 4, 1e-6);
      expect(value(() => build({ class_weight: [0.8, 0.2], avg_non_ignore: true }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((1.2 * LN2) / 3, 1e-6);
    });

    it("reduction 'none'/'sum', reductionOverride, loss_weight and avgFactor", () => {
      const loss = build({ loss_weight: 2 });
      const none = values(() => loss.forward(logits, labels, { ignoreIndex: 255, reductionOverride: 'none' }));
      expect(none.shape).to.deep.equal([1, 1, 4]);
      none.data.forEach((v, i) => expect(v).to.be.closeTo(i === 3 ? 0 : 2 * LN2, 1e-6));
      expect(value(() => loss.forward(logits, labels, { ignoreIndex: 255, reductionOverride: 'sum' }))).to.be.closeTo(6 * LN2, 1e-5);
      expect(value(() => build({ reduction: 'sum' }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo(3 * LN2, 1e-5);
      expect(value(() => loss.forward(logits, labels, { ignoreIndex: 255, avgFactor: 6 }))).to.be.closeTo((2 * 3 * LN2) / (6 + EPS), 1e-6);
      expect(() => loss.forward(logits, labels, { ignoreIndex: 255, avgFactor: 6, reductionOverride: 'sum' })).to.throw("avg_factor can not be used with reduction 'sum'");
    });

    it('multiplies by the per-pixel weight before the mean over all pixels', () => {
      const weight = tf.tensor3d([[[1, 0, 1, 1]]]);
      expect(value(() => build({}).forward(logits, labels, { ignoreIndex: 255, weight }))).to.be.closeTo((2 * LN2) / 4, 1e-6);
      weight.dispose();
    });

    it("with PyTorch's ignore index -100, 255 is a label out of range: checkLabels rejects it (asynchronously)", async () => {
      expect(await rejectionOf(build({}).checkLabels!(labels, 2, -100))).to.include('label 255 is outside [0, 2) and is not the ignore index -100');
    });
  });

  it('checkLabels rejects labels outside [0, C) that are not the ignore index, naming the loss; nothing left behind', async () => {
    for (const bad of [2, -1]) {
      const labels = tf.tensor3d([[[0, bad]]], [1, 1, 2], 'int32');
      const before = tf.memory().numTensors;
      expect(await rejectionOf(build({}).checkLabels!(labels, 2, 255))).to.equal(
        `model.decode_head.loss_decode (CrossEntropyLoss 'loss_ce'): label ${bad} is outside [0, 2) and is not the ignore index 255; check the dataset's label values (reduce_zero_label, classes) or the head's num_classes/ignore_index`,
      );
      expect(tf.memory().numTensors).to.equal(before);
      labels.dispose();
    }
    const valid = tf.tensor3d([[[0, 1, 255]]], [1, 1, 3], 'int32');
    expect(await rejectionOf(build({}).checkLabels!(valid, 2, 255))).to.equal(null);
    expect(await rejectionOf(build({ use_sigmoid: true }).checkLabels!(valid, 1, 255))).to.equal(null);
    expect(await rejectionOf(build({ use_sigmoid: true }).checkLabels!(valid, 1, -100))).to.include('(sigmoid, single channel: at most 2 classes): label 255 is outside [0, 2)');
    valid.dispose();
  });

  it('sigmoid, single channel: labels are the targets, mean over all pixels or the valid ones', async () => {
    // x = 0, t = 1 → ln 2; x = 2, t = 0 → ln(1 + e²); third pixel ignored
    const logits = tf.tensor4d([0, 2, -1], [1, 1, 3, 1]);
    const labels = tf.tensor3d([[[1, 0, 255]]], [1, 1, 3], 'int32');
    const softplus2 = Math.log(1 + Math.exp(2));
    expect(value(() => build({ use_sigmoid: true }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((LN2 + softplus2) / 3, 1e-5);
    expect(value(() => build({ use_sigmoid: true, avg_non_ignore: true }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((LN2 + softplus2) / (2 + EPS), 1e-5);
    const none = values(() => build({ use_sigmoid: true }).forward(logits, labels, { ignoreIndex: 255, reductionOverride: 'none' }));
    expect(none.shape).to.deep.equal([1, 1, 3]);
    expect(none.data[0]).to.be.closeTo(LN2, 1e-6);
    expect(none.data[1]).to.be.closeTo(softplus2, 1e-5);
    expect(none.data[2]).to.equal(0); // ignored
    const three = tf.tensor3d([[[1, 2, 0]]], [1, 1, 3], 'int32');
    expect(await rejectionOf(build({ use_sigmoid: true }).checkLabels!(three, 1, 255))).to.include('at most 2 classes): label 2 is outside [0, 2)');
    tf.dispose([logits, labels, three]);
  });

  it('sigmoid, several channels: one-hot targets, class_weight as positive weight, valid elements counted per class', () => {
    const logits = tf.tensor4d([0, 0, 0, 0], [1, 1, 2, 2]);
    const labels = tf.tensor3d([[[1, 255]]], [1, 1, 2], 'int32');
    // pixel 0: class 0 (t = 0) → ln 2, class 1 (t = 1, pos weight 3) → 3 ln 2; pixel 1 ignored
    const loss = build({ use_sigmoid: true, class_weight: [1, 3] }, { numClasses: 2 });
    expect(value(() => loss.forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((4 * LN2) / 4, 1e-6);
    expect(value(() => build({ use_sigmoid: true, class_weight: [1, 3], avg_non_ignore: true }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((4 * LN2) / (2 + EPS), 1e-6);
    const weight = tf.tensor3d([[[0.5, 1]]]);
    expect(value(() => loss.forward(logits, labels, { ignoreIndex: 255, weight }))).to.be.closeTo((2 * LN2) / 4, 1e-6);
    const none = values(() => loss.forward(logits, labels, { ignoreIndex: 255, reductionOverride: 'none' }));
    expect(none.shape).to.deep.equal([1, 1, 2, 2]);
    // [pixel 0: class 0 (t = 0) ln 2, class 1 (t = 1) 3 ln 2; pixel 1 ignored: 0, 0]
    [LN2, 3 * LN2, 0, 0].forEach((expected, i) => expect(none.data[i], `element ${i}`).to.be.closeTo(expected, 1e-6));
    tf.dispose([logits, labels, weight]);
  });

  it('sigmoid: class_weight weighs only the positive term (label 0, class_weight [1, 3] → ln 2, not 2 ln 2)', () => {
    // one pixel, logits 0: class 0 is the target (t = 1, pos weight 1) → ln 2; class 1 (t = 0) → ln 2, its weight 3
    // does not apply to a negative element. Weighting every element would give (ln 2 + 3 ln 2) / 2 = 1.386294.
    const logits = tf.zeros([1, 1, 1, 2]);
    const labels = tf.tensor3d([[[0]]], [1, 1, 1], 'int32');
    const loss = build({ use_sigmoid: true, class_weight: [1, 3] }, { numClasses: 2 });
    expect(value(() => loss.forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo(0.693147, 1e-6);
    const none = values(() => loss.forward(logits, labels, { ignoreIndex: 255, reductionOverride: 'none' }));
    [LN2, LN2].forEach((expected, i) => expect(none.data[i], `element ${i}`).to.be.closeTo(expected, 1e-6));
    tf.dispose([logits, labels]);
  });

  it('reads class_weight from a .json or .npy file relative to the config folder, with clear errors', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-ce-'));
    try {
      fs.writeFileSync(path.join(dir, 'w.json'), '[0.8, 0.2]');
      // numpy.save(np.array([0.8, 0.2, 1.5], dtype='<f4'))
      fs.writeFileSync(path.join(dir, 'w.npy'), Buffer.from('k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIArNzEw/zcxMPgAAwD8=', 'base64'));
      const rec = recorder();
      const fileKernel = await createKernel({ plugins: [plugin], backend: 'cpu', configDir: dir, logger: rec.logger });
      const pred = tf.tensor2d([[100, -100]]);
      const label = tf.tensor1d([1], 'int32');
      const fromJson = fileKernel.build('losses', { type: 'CrossEntropyLoss', class_weight: './w.json' }, { parent: { numClasses: 2 } });
      expect(value(() => fromJson.forward(pred, label))).to.be.closeTo(40, 1e-3);
      const pred3 = tf.tensor2d([[0, 0, 0]]);
      const label2 = tf.tensor1d([2], 'int32');
      const fromNpy = fileKernel.build('losses', { type: 'CrossEntropyLoss', class_weight: 'w.npy' }, { parent: { numClasses: 3 } });
      expect(value(() => fromNpy.forward(pred3, label2))).to.be.closeTo(1.5 * Math.log(3), 1e-5);
      expect(() => fileKernel.build('losses', { type: 'CrossEntropyLoss', class_weight: 'w.npy' }, { path: 'model.decode_head.loss_decode', parent: { numClasses: 19 } })).to.throw(
        "model.decode_head.loss_decode.class_weight: expected 19 class weights (one per class, num_classes = 19), got 3 (from 'w.npy')",
      );
      expect(() => fileKernel.build('losses', { type: 'CrossEntropyLoss', class_weight: 'missing.json' }, { path: 'm' })).to.throw("m.class_weight: class weight file 'missing.json' not found");
      tf.dispose([pred, label, pred3, label2]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checks class_weight against num_classes at build time and rejects unknown options', () => {
    expect(() => build({ class_weight: [1, 1, 1] }, { numClasses: 2 })).to.throw('model.decode_head.loss_decode.class_weight: expected 2 class weights (one per class, num_classes = 2), got 3');
    expect(() => build({ class_weights: [1, 1] })).to.throw("loss_decode.class_weights: unknown option of CrossEntropyLoss (did you mean 'class_weight'?)");
    expect(() => build({ use_sigmoid: true, use_mask: true })).to.throw('use_sigmoid and use_mask cannot both be true');
  });

  it("warns once per loss instance, naming its head, when avg_non_ignore is false with reduction 'mean'", () => {
    build({}, { head: 'model.decode_head' }, 'model.decode_head.loss_decode.0');
    build({}, { head: 'model.decode_head' }, 'model.decode_head.loss_decode.0');
    build({}, { head: 'model.auxiliary_head' }, 'model.auxiliary_head.loss_decode');
    build({ avg_non_ignore: true }, { head: 'model.decode_head' }, 'model.decode_head.loss_decode.1');
    build({ reduction: 'sum' }, { head: 'model.decode_head' }, 'model.decode_head.loss_decode.2');
    expect(warnings).to.have.length(2);
    expect(warnings[0]).to.match(/^model\.decode_head\.loss_decode\.0 \(head model\.decode_head\): CrossEntropyLoss has avg_non_ignore: false/);
    expect(warnings[1]).to.contain('model.auxiliary_head.loss_decode (head model.auxiliary_head)');
  });

  it('lets gradients flow to the logits (softmax − one-hot over the pixel count) without leaking tensors', () => {
    nn.ensureGradientsRegistered();
    const loss = build({ class_weight: [1, 1, 2] });
    const logits = tf.variable(tf.zeros([1, 1, 2, 3]), true, 'ce_logits');
    const labels = tf.tensor3d([[[0, 2]]], [1, 1, 2], 'int32');
    const before = tf.memory().numTensors;
    const { value: total, grads } = tf.variableGrads(() => loss.forward(logits, labels, { ignoreIndex: 255 }) as tf.Scalar, [logits]);
    // pixel 0: (1/3 − [1,0,0]) / 2; pixel 1 (weight 2): 2·(1/3 − [0,0,1]) / 2
    const expected = [(1 / 3 - 1) / 2, 1 / 6, 1 / 6, 1 / 3, 1 / 3, (1 / 3 - 1)];
    Array.from(grads.ce_logits!.dataSync()).forEach((g, i) => expect(g).to.be.closeTo(expected[i]!, 1e-6));
    expect(total.dataSync()[0]).to.be.closeTo((3 * Math.log(3)) / 2, 1e-5);
    tf.dispose([total, ...Object.values(grads)]);
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([logits, labels]);
  });
});
