import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createKernel, nn, type Kernel } from '@segkit/core';
import { plugin } from '../src/index';

const EPS = 1.1920928955078125e-7;
const quiet = { info: () => undefined, warn: () => undefined };

/** The number a loss call yields, checking that nothing leaked. */
function value(fn: () => tf.Tensor): number {
  const before = tf.memory().numTensors;
  const out = fn();
  expect(out.rank, 'DiceLoss returns a scalar').to.equal(0);
  const result = out.dataSync()[0]!;
  out.dispose();
  expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  return result;
}

describe('loss-dice: DiceLoss (0.x)', () => {
  let kernel: Kernel;
  const build = (cfg: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
    kernel.build('losses', { type: 'DiceLoss', ...cfg }, { path: 'model.decode_head.loss_decode.1', parent: extra });
  let equalLogits: tf.Tensor;
  before(async () => {
    kernel = await createKernel({ plugins: [plugin], backend: 'cpu', logger: quiet });
    equalLogits = tf.zeros([1, 1, 2, 2]); // p = 0.5 everywhere
  });
  after(() => equalLogits.dispose());

  it('computes the per-class dice of SPEC §1d (p = 0.5, labels [0,1]: each class 1 − 2/2.5 = 0.2, mean 0.2)', () => {
    const labels = tf.tensor3d([[[0, 1]]], [1, 1, 2], 'int32');
    const loss = build();
    expect(loss.lossName).to.equal('loss_dice');
    expect(loss.usesPixelWeight).to.equal(false);
    expect(value(() => loss.forward(equalLogits, labels))).to.be.closeTo(0.2, 1e-6);
    // exponent 1: den = (0.5 + 1) + 0.5 + 1 = 3 → 1 − 2/3 per class
    expect(value(() => build({ exponent: 1 }).forward(equalLogits, labels))).to.be.closeTo(1 / 3, 1e-6);
    // smooth 2: per class 1 − (1 + 2)/(1.5 + 2)
    expect(value(() => build({ smooth: 2 }).forward(equalLogits, labels))).to.be.closeTo(1 - 3 / 3.5, 1e-6);
    // class_weight [1, 0.5]: (0.2 + 0.1) / 2
    expect(value(() => build({ class_weight: [1, 0.5] }, { numClasses: 2 }).forward(equalLogits, labels))).to.be.closeTo(0.15, 1e-6);
    // loss_weight 3
    expect(value(() => build({ loss_weight: 3 }).forward(equalLogits, labels))).to.be.closeTo(0.6, 1e-6);
    labels.dispose();
  });

  it('raises p and t to an exponent other than 1 and 2 (exponent 3: 0.111111, not the 0.2 of squaring)', () => {
    const labels = tf.tensor3d([[[0, 1]]], [1, 1, 2], 'int32');
    // per class: num = 2·0.5 + 1 = 2, den = (0.5³ + 1) + 0.5³ + 1 = 2.25 → 1 − 2/2.25 = 1/9
    expect(value(() => build({ exponent: 3 }).forward(equalLogits, labels))).to.be.closeTo(0.111111, 1e-6);
    labels.dispose();
  });

  it('leaves the denominator unmasked: an ignored 255 counts as class C−1 there (labels [0,255] → (0.2 + 0.6)/2)', () => {
    const labels = tf.tensor3d([[[0, 255]]], [1, 1, 2], 'int32');
    // class 1: num = 0 + 1 (pixel 1 masked), den = 0.25 + (0.25 + 1) + 1 = 2.5 → 1 − 0.4
    expect(value(() => build().forward(equalLogits, labels))).to.be.closeTo(0.4, 1e-6);
    labels.dispose();
  });

  it("uses its own ignore_index (not the head's) and skips the class equal to it, still dividing by C", () => {
    const labels = tf.tensor3d([[[0, 1]]], [1, 1, 2], 'int32');
    // ignore_index 1: valid = [1,0]; class 1 skipped; class 0: 1 − 2/2.5 = 0.2; / 2
    expect(value(() => build({ ignore_index: 1 }).forward(equalLogits, labels, { ignoreIndex: 255 }))).to.be.closeTo(0.1, 1e-6);
    // the head's ignoreIndex 0 changes nothing
    expect(value(() => build().forward(equalLogits, labels, { ignoreIndex: 0 }))).to.be.closeTo(0.2, 1e-6);
    labels.dispose();
  });

  it('averages each class over the images before summing classes', () => {
    const logits = tf.zeros([2, 1, 2, 2]);
    const labels = tf.tensor3d([[[0, 1]], [[0, 0]]], [2, 1, 2], 'int32');
    // image 2: class 0: 1 − 3/3.5 = 1/7; class 1: 1 − 1/1.5 = 1/3
    const expected = ((0.2 + 1 / 7) / 2 + (0.2 + 1 / 3) / 2) / 2;
    expect(value(() => build().forward(logits, labels))).to.be.closeTo(expected, 1e-6);
    tf.dispose([logits, labels]);
  });

  it("ignores pixel weights; every reduction returns the scalar; avgFactor divides under 'mean'", () => {
    const labels = tf.tensor3d([[[0, 1]]], [1, 1, 2], 'int32');
    const weight = tf.tensor3d([[[0, 0]]]);
    const loss = build();
    expect(value(() => loss.forward(equalLogits, labels, { weight }))).to.be.closeTo(0.2, 1e-6);
    expect(value(() => loss.forward(equalLogits, labels, { reductionOverride: 'none' }))).to.be.closeTo(0.2, 1e-6);
    expect(value(() => loss.forward(equalLogits, labels, { reductionOverride: 'sum' }))).to.be.closeTo(0.2, 1e-6);
    expect(value(() => loss.forward(equalLogits, labels, { avgFactor: 4 }))).to.be.closeTo(0.2 / (4 + EPS), 1e-6);
    expect(() => loss.forward(equalLogits, labels, { avgFactor: 4, reductionOverride: 'sum' })).to.throw("avg_factor can not be used with reduction 'sum'");
    tf.dispose([labels, weight]);
  });

  it('checks class_weight length and option names', () => {
    expect(() => build({ class_weight: [1, 2, 3] }, { numClasses: 2 })).to.throw('model.decode_head.loss_decode.1.class_weight: expected 2 class weights');
    expect(() => build({ smoth: 1 })).to.throw("did you mean 'smooth'?");
  });

  it('lets gradients flow (one pixel, label 0, logits [0,0]: ∂/∂z = ∓0.1417284) without leaking tensors', () => {
    nn.ensureGradientsRegistered();
    const loss = build();
    const logits = tf.variable(tf.zeros([1, 1, 1, 2]), true, 'dice_logits');
    const labels = tf.tensor3d([[[0]]], [1, 1, 1], 'int32');
    const before = tf.memory().numTensors;
    const { value: total, grads } = tf.variableGrads(() => loss.forward(logits, labels) as tf.Scalar, [logits]);
    // d0 = 1 − (2p+1)/(p²+2), d1 = 1 − 1/((1−p)²+1); ∂loss/∂p = (−2.5/2.25² − 1/1.25²)/2; ∂p/∂z0 = 0.25
    const dp = (-2.5 / 2.25 ** 2 - 1 / 1.25 ** 2) / 2;
    const [g0, g1] = Array.from(grads.dice_logits!.dataSync());
    expect(g0).to.be.closeTo(dp * 0.25, 1e-6);
    expect(g1).to.be.closeTo(-dp * 0.25, 1e-6);
    expect(total.dataSync()[0]).to.be.closeTo((1 - 2 / 2.25 + (1 - 1 / 1.25)) / 2, 1e-6);
    tf.dispose([total, ...Object.values(grads)]);
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([logits, labels]);
  });
});
