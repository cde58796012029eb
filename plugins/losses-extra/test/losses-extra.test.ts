import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createKernel, nn, type Kernel, type Loss } from '@segkit/core';
import { plugin } from '../src/index';
import { lovaszGrad } from '../src/lovasz';

const LN2 = Math.log(2);
const quiet = { info: () => undefined, warn: () => undefined };
const softplus = (x: number) => Math.log(1 + Math.exp(x));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function values(fn: () => tf.Tensor): { shape: number[]; data: number[] } {
  const before = tf.memory().numTensors;
  const out = fn();
  const result = { shape: out.shape, data: Array.from(out.dataSync()) };
  out.dispose();
  expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  return result;
}
const value = (fn: () => tf.Tensor) => values(fn).data[0]!;

/** Gradient of `loss` w.r.t. logits of the given values, checking that the tape leaves nothing behind. */
function gradient(loss: Loss, logitValues: number[], shape: [number, number, number, number], labels: tf.Tensor, ignoreIndex = 255): number[] {
  nn.ensureGradientsRegistered();
  const logits = tf.variable(tf.tensor4d(logitValues, shape), true, `logits_${Math.random().toString(36).slice(2)}`);
  const before = tf.memory().numTensors;
  const { value: total, grads } = tf.variableGrads(() => loss.forward(logits, labels, { ignoreIndex }) as tf.Scalar, [logits]);
  const result = Array.from(grads[logits.name]!.dataSync());
  tf.dispose([total, ...Object.values(grads)]);
  expect(tf.memory().numTensors, 'tensors left behind by the gradient').to.equal(before);
  logits.dispose();
  return result;
}

describe('losses-extra', () => {
  let kernel: Kernel;
  const build = (type: string, cfg: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
    kernel.build('losses', { type, ...cfg }, { path: 'model.decode_head.loss_decode.1', parent: extra });
  before(async () => {
    kernel = await createKernel({ plugins: [plugin], backend: 'cpu', logger: quiet });
  });

  it('FocalLoss and LovaszLoss check label ranges before the forward pass (checkLabels, asynchronous), a single channel taking 0 and 1', async () => {
    const labels = tf.tensor3d([[[0, 1, 2, 255]]], [1, 1, 4], 'int32');
    const before = tf.memory().numTensors;
    const rejection = (promise: Promise<void>) => promise.then(() => null, (error: Error) => error.message);
    for (const [type, cfg] of [['FocalLoss', {}], ['LovaszLoss', { reduction: 'none' }]] as const) {
      const loss = build(type, cfg);
      expect(await rejection(loss.checkLabels!(labels, 3, 255)), type).to.equal(null);
      expect(await rejection(loss.checkLabels!(labels, 2, 255)), type).to.match(/: label 2 is outside \[0, 2\) and is not the ignore index 255;/);
      expect(await rejection(loss.checkLabels!(labels, 1, 255)), type).to.match(/: label 2 is outside \[0, 2\)/);
    }
    expect(tf.memory().numTensors).to.equal(before);
    labels.dispose();
  });

  describe('FocalLoss', () => {
    // zero logits, 2 classes, labels [0, 255]: each valid element BCE ln 2 × 0.5 × 0.5² = ln2/8
    let logits: tf.Tensor;
    let labels: tf.Tensor;
    beforeEach(() => {
      logits = tf.zeros([1, 1, 2, 2]);
      labels = tf.tensor3d([[[0, 255]]], [1, 1, 2], 'int32');
    });
    afterEach(() => tf.dispose([logits, labels]));

    it('averages BCE·(αt + (1−α)(1−t))·|t − σ(x)|^γ over all N·H·W·C elements, ignored pixels weighted 0', () => {
      const loss = build('FocalLoss');
      expect(loss.lossName).to.equal('loss_focal');
      expect(value(() => loss.forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((2 * LN2) / 8 / 4, 1e-6);
      expect(value(() => build('FocalLoss', { alpha: [0.25, 0.75] }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((2 * LN2 * 0.25 * 0.25) / 4, 1e-6);
      expect(value(() => build('FocalLoss', { class_weight: [2, 1] }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((3 * LN2) / 8 / 4, 1e-6);
      expect(value(() => build('FocalLoss', { gamma: 0, loss_weight: 2 }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo((2 * 2 * LN2 * 0.5) / 4, 1e-6);
      const none = values(() => loss.forward(logits, labels, { ignoreIndex: 255, reductionOverride: 'none' }));
      expect(none.shape).to.deep.equal([1, 1, 2, 2]);
      none.data.forEach((v, i) => expect(v).to.be.closeTo(i < 2 ? LN2 / 8 : 0, 1e-6));
    });

    it('broadcasts a per-pixel weight [N,H,W] over the classes', () => {
      const weight = tf.tensor3d([[[0.5, 1]]]);
      expect(value(() => build('FocalLoss').forward(logits, labels, { ignoreIndex: 255, weight }))).to.be.closeTo((0.5 * 2 * LN2) / 8 / 4, 1e-6);
      weight.dispose();
    });

    it('treats a single-channel head as class 1 against 0', () => {
      const single = tf.tensor4d([2, -1], [1, 1, 2, 1]);
      const binary = tf.tensor3d([[[1, 0]]], [1, 1, 2], 'int32');
      const expected = (softplus(-2) * 0.5 * (1 - sigmoid(2)) ** 2 + softplus(-1) * 0.5 * sigmoid(-1) ** 2) / 2;
      expect(value(() => build('FocalLoss').forward(single, binary, { ignoreIndex: 255 }))).to.be.closeTo(expected, 1e-6);
      tf.dispose([single, binary]);
    });

    it('rejects use_sigmoid false and mismatched alpha/class_weight lengths', () => {
      expect(() => build('FocalLoss', { use_sigmoid: false })).to.throw('only the sigmoid focal loss exists');
      expect(() => build('FocalLoss', { class_weight: [1, 1, 1] }, { numClasses: 2 })).to.throw('class_weight: expected 2 class weights');
      expect(() => build('FocalLoss', { alpha: [0.5] }, { numClasses: 2 })).to.throw('alpha: expected one alpha per class (2), got 1');
    });

    it('has the hand gradient at x = 0, t = 1: −σ(0)·0.5·0.25 − ln2·0.5·2·0.5·0.25', () => {
      const one = tf.tensor3d([[[1]]], [1, 1, 1], 'int32');
      const [g] = gradient(build('FocalLoss'), [0], [1, 1, 1, 1], one);
      expect(g).to.be.closeTo(-0.0625 - 0.125 * LN2, 1e-6);
      one.dispose();
    });
  });

  describe('TverskyLoss', () => {
    let logits: tf.Tensor;
    beforeEach(() => (logits = tf.zeros([1, 1, 2, 2])));
    afterEach(() => logits.dispose());

    it('computes (TP + s)/(TP + αFP + βFN + s) per class and image, 1 − T, summed over classes / C', () => {
      const balanced = tf.tensor3d([[[0, 1]]], [1, 1, 2], 'int32');
      // each class: TP 0.5, FP 0.5, FN 0.5 → T = 1.5/2 → 0.25; (0.25 + 0.25)/2
      expect(value(() => build('TverskyLoss').forward(logits, balanced))).to.be.closeTo(0.25, 1e-6);
      expect(value(() => build('TverskyLoss', { gamma: 2 }).forward(logits, balanced))).to.be.closeTo(0.5, 1e-6);
      expect(value(() => build('TverskyLoss', { class_weight: [1, 0] }).forward(logits, balanced))).to.be.closeTo(0.125, 1e-6);
      const same = tf.tensor3d([[[0, 0]]], [1, 1, 2], 'int32');
      // class 0: TP 1, FP 0, FN 1 → 1 − 2/2.7; class 1: TP 0, FP 1, FN 0 → 1 − 1/1.3
      expect(value(() => build('TverskyLoss').forward(logits, same))).to.be.closeTo((1 - 2 / 2.7 + 1 - 1 / 1.3) / 2, 1e-6);
      tf.dispose([balanced, same]);
    });

    it('masks every term with its own ignore_index (an ignored 255 is class C−1 but counts nowhere)', () => {
      const labels = tf.tensor3d([[[0, 255]]], [1, 1, 2], 'int32');
      // class 0: TP 0.5, FN 0.5 → 1 − 1.5/1.85; class 1: FP 0.5 → 1 − 1/1.15
      expect(value(() => build('TverskyLoss').forward(logits, labels, { ignoreIndex: 0 }))).to.be.closeTo((1 - 1.5 / 1.85 + 1 - 1 / 1.15) / 2, 1e-6);
      labels.dispose();
    });

    it('rejects alpha + beta ≠ 1 and gamma < 1; ignores pixel weights', () => {
      expect(() => build('TverskyLoss', { alpha: 0.2 })).to.throw('alpha + beta must be 1.0, got 0.2 + 0.7');
      expect(() => build('TverskyLoss', { gamma: 0.5 })).to.throw('gamma should be at least 1.0');
      expect(build('TverskyLoss').usesPixelWeight).to.equal(false);
    });

    it('has the hand gradient (labels [0,1], p = 0.5: ∂loss/∂z = ∓0.0625 at pixel 0)', () => {
      const labels = tf.tensor3d([[[0, 1]]], [1, 1, 2], 'int32');
      // p = p(class 0) at pixel 0. Class 0: T0 = (TP+1)/(TP + 0.3·FP + 0.7·FN + 1) with TP = p, FN = 1 − p:
      //   ∂T0/∂p = (1·2 − 1.5·(1 − 0.7))/2² = 0.3875. Class 1: FP = 1 − p: ∂T1/∂p = 0.3·1.5/2² = 0.1125.
      // loss = (2 − T0 − T1)/2 → ∂loss/∂p = −0.25; ∂p/∂z0 = p(1 − p) = 0.25, ∂p/∂z1 = −0.25.
      const [g00, g01] = gradient(build('TverskyLoss'), [0, 0, 0, 0], [1, 1, 2, 2], labels);
      const expected = (-(0.3875 + 0.1125) / 2) * 0.25;
      expect(g00).to.be.closeTo(expected, 1e-6);
      expect(g01).to.be.closeTo(-expected, 1e-6);
      labels.dispose();
    });
  });

  describe('LovaszLoss', () => {
    // p = (0.8, 0.2) and (0.4, 0.6), both labelled 0
    let logits: tf.Tensor;
    let labels: tf.Tensor;
    beforeEach(() => {
      logits = tf.tensor4d([0.8, 0.2, 0.4, 0.6].map(Math.log), [1, 1, 2, 2]);
      labels = tf.tensor3d([[[0, 0]]], [1, 1, 2], 'int32');
    });
    afterEach(() => tf.dispose([logits, labels]));

    it('Lovász-softmax over present classes: errors [0.6, 0.2], grad [0.5, 0.5] → 0.4', () => {
      expect(value(() => build('LovaszLoss', { reduction: 'none' }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo(0.4, 1e-6);
      // 'all' adds class 1: errors [0.6, 0.2] with no foreground → grad [1, 0] → 0.6; mean 0.5
      expect(value(() => build('LovaszLoss', { reduction: 'none', classes: 'all' }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo(0.5, 1e-6);
      expect(value(() => build('LovaszLoss', { reduction: 'none', classes: [1] }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo(0.6, 1e-6);
      expect(value(() => build('LovaszLoss', { reduction: 'none', classes: 'all', class_weight: [2, 1] }).forward(logits, labels, { ignoreIndex: 255 }))).to.be.closeTo(0.7, 1e-6);
    });

    it("skips the head's ignored pixels; no valid pixel gives 0", () => {
      const wider = tf.tensor4d([0.8, 0.2, 0.4, 0.6, 0.01, 0.99].map(Math.log), [1, 1, 3, 2]);
      const withIgnored = tf.tensor3d([[[0, 0, 255]]], [1, 1, 3], 'int32');
      expect(value(() => build('LovaszLoss', { reduction: 'none' }).forward(wider, withIgnored, { ignoreIndex: 255 }))).to.be.closeTo(0.4, 1e-6);
      const none = tf.fill([1, 1, 3], 255, 'int32');
      expect(value(() => build('LovaszLoss', { reduction: 'none' }).forward(wider, none, { ignoreIndex: 255 }))).to.equal(0);
      tf.dispose([wider, withIgnored, none]);
    });

    it('per_image reduces the per-image losses (0.4 and 0.5 for a tie-only image)', () => {
      const batch = tf.tensor4d([0.8, 0.2, 0.4, 0.6, 0.5, 0.5, 0.5, 0.5].map(Math.log), [2, 1, 2, 2]);
      const batchLabels = tf.tensor3d([[[0, 0]], [[0, 1]]], [2, 1, 2], 'int32');
      expect(value(() => build('LovaszLoss', { per_image: true }).forward(batch, batchLabels, { ignoreIndex: 255 }))).to.be.closeTo(0.45, 1e-6);
      expect(value(() => build('LovaszLoss', { per_image: true, reduction: 'sum' }).forward(batch, batchLabels, { ignoreIndex: 255 }))).to.be.closeTo(0.9, 1e-6);
      tf.dispose([batch, batchLabels]);
    });

    it('binary Lovász hinge on a single-channel head: errors 1 − x·(2t − 1) → 0.25', () => {
      const single = tf.tensor4d([2, -1, 0.5], [1, 1, 3, 1]);
      const binary = tf.tensor3d([[[1, 0, 1]]], [1, 1, 3], 'int32');
      // sorted errors [0.5, 0, −1], gt [1, 0, 1] → grad [0.5, 1/6, 1/3]; relu → 0.5·0.5
      expect(value(() => build('LovaszLoss', { loss_type: 'binary', reduction: 'none' }).forward(single, binary, { ignoreIndex: 255 }))).to.be.closeTo(0.25, 1e-6);
      expect(() => build('LovaszLoss', { loss_type: 'binary', reduction: 'none' }).forward(logits, labels, { ignoreIndex: 255 })).to.throw("loss_type 'binary' needs a single-channel head");
      tf.dispose([single, binary]);
    });

    it('equals the host reference (stable sort + lovaszGrad) on random scores with ignored pixels, whole batch and per image', () => {
      const [n, h, w, c] = [2, 3, 4, 3];
      let seed = 7;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
      const logitValues = Array.from({ length: n * h * w * c }, () => 4 * random() - 2);
      // Class 2 is absent from image 1 and a few pixels are ignored, so 'present' differs per image.
      const labelValues = Array.from({ length: n * h * w }, (_, i) => (i % 7 === 3 ? 255 : i < h * w ? i % 3 : i % 2));
      const probabilities = (pixel: number) => {
        const z = logitValues.slice(pixel * c, pixel * c + c).map(Math.exp);
        const sum = z.reduce((a, b) => a + b, 0);
        return z.map((v) => v / sum);
      };
      const reference = (pixels: number[], classes: 'present' | 'all') => {
        const valid = pixels.filter((p) => labelValues[p] !== 255);
        const losses: number[] = [];
        for (let k = 0; k < c; k++) {
          const fg = valid.map((p) => (labelValues[p] === k ? 1 : 0));
          if (classes === 'present' && !fg.includes(1)) continue;
          const errors = valid.map((p, i) => Math.abs(fg[i]! - probabilities(p)[k]!));
          const order = errors.map((_, i) => i).sort((a, b) => errors[b]! - errors[a]!);
          const grad = lovaszGrad(order.map((i) => fg[i]!));
          losses.push(order.reduce((sum, i, j) => sum + errors[i]! * grad[j]!, 0));
        }
        return losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : 0;
      };
      const all = [...Array(n * h * w).keys()];
      const image = (k: number) => all.slice(k * h * w, (k + 1) * h * w);
      const scores = tf.tensor4d(logitValues, [n, h, w, c]);
      const target = tf.tensor3d(labelValues, [n, h, w], 'int32');
      for (const classes of ['present', 'all'] as const) {
        expect(value(() => build('LovaszLoss', { reduction: 'none', classes }).forward(scores, target, { ignoreIndex: 255 }))).to.be.closeTo(reference(all, classes), 1e-5);
        const perImage = (reference(image(0), classes) + reference(image(1), classes)) / 2;
        expect(value(() => build('LovaszLoss', { per_image: true, classes }).forward(scores, target, { ignoreIndex: 255 }))).to.be.closeTo(perImage, 1e-5);
      }
      tf.dispose([scores, target]);
    });

    it("requires reduction 'none' without per_image, as 0.x asserts", () => {
      expect(() => build('LovaszLoss')).to.throw("model.decode_head.loss_decode.1.reduction: must be 'none' when per_image is false");
    });

    it('has the hand gradient: ∂/∂p0 = −0.5 at both pixels, through the softmax p0(1 − p0)', () => {
      const g = gradient(build('LovaszLoss', { reduction: 'none' }), [0.8, 0.2, 0.4, 0.6].map(Math.log), [1, 1, 2, 2], labels);
      [-0.08, 0.08, -0.12, 0.12].forEach((expected, i) => expect(g[i]).to.be.closeTo(expected, 1e-6));
    });
  });
});
