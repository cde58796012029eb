import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { nn, SegkitError } from '../src';
import { expectClose, expectNoLeak, setValue } from './nn-helpers';

describe('nn norms', () => {
  // One channel, four pixels 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased 5/3.
  const x = () => tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);

  it('BatchNorm2d in train mode normalises with batch statistics and updates running stats with the unbiased variance', () => {
    const bn = new nn.BatchNorm2d(1);
    const y = bn.forward(x());
    const std = Math.sqrt(1.25 + 1e-5);
    expectClose(y, [1, 2, 3, 4].map((v) => (v - 2.5) / std));
    expectClose(bn.runningMean!, [0.25]); // 0.9·0 + 0.1·2.5
    expectClose(bn.runningVar!, [0.9 + 0.1 * (5 / 3)]);
    expect(bn.numBatchesTracked!.dataSync()[0]).to.equal(1);
    bn.forward(x());
    expectClose(bn.runningMean!, [0.9 * 0.25 + 0.25]);
    expect(bn.numBatchesTracked!.dataSync()[0]).to.equal(2);
    expect(bn.namedParameters().map(([name]) => name)).to.deep.equal(['weight', 'bias']);
    expect(bn.namedBuffers().map(([name]) => name)).to.deep.equal(['running_mean', 'running_var', 'num_batches_tracked']);
    bn.dispose();
  });

  it('BatchNorm2d in eval mode uses running stats and affine parameters, and leaves them unchanged', () => {
    const bn = new nn.BatchNorm2d(1).eval();
    setValue(bn.runningMean!, [0.5]);
    setValue(bn.runningVar!, [4]);
    setValue(bn.weight!, [2]);
    setValue(bn.bias!, [1]);
    const std = Math.sqrt(4 + 1e-5);
    expectClose(bn.forward(x()), [1, 2, 3, 4].map((v) => ((v - 0.5) / std) * 2 + 1));
    expectClose(bn.runningMean!, [0.5]);
    expect(bn.numBatchesTracked!.dataSync()[0]).to.equal(0);
    bn.dispose();
  });

  it('BatchNorm2d with momentum null keeps a cumulative average', () => {
    const bn = new nn.BatchNorm2d(1, { momentum: null });
    bn.forward(x());
    bn.forward(tf.tensor4d([5, 6, 7, 8], [1, 2, 2, 1]));
    expectClose(bn.runningMean!, [(2.5 + 6.5) / 2]);
    bn.dispose();
  });

  it('GroupNorm normalises each group of channels per sample', () => {
    const gn = new nn.GroupNorm(2, 4);
    // Group 0 holds 1, 2, 5, 6 (mean 3.5), group 1 holds 3, 4, 7, 8 (mean 5.5); both variance 4.25.
    const y = gn.forward(tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 2, 4]));
    const std = Math.sqrt(4.25 + 1e-5);
    expectClose(y, [1, 2, 3, 4, 5, 6, 7, 8].map((v, i) => (v - ((i % 4) < 2 ? 3.5 : 5.5)) / std));
    expect(() => new nn.GroupNorm(3, 4)).to.throw(/divisible/);
    gn.dispose();
  });

  it('isNormModule recognises BatchNorm2d and GroupNorm only', () => {
    expect(nn.isNormModule(new nn.BatchNorm2d(2))).to.equal(true);
    expect(nn.isNormModule(new nn.GroupNorm(1, 2))).to.equal(true);
    expect(nn.isNormModule(new nn.Conv2d(2, 2, 1))).to.equal(false);
    expect(nn.isNormModule(new nn.ReLU())).to.equal(false);
  });

  it('buildNormLayer maps BN/SyncBN to BatchNorm2d (bn) and GN to GroupNorm (gn); requires_grad false freezes', () => {
    const sync = nn.buildNormLayer({ type: 'SyncBN', requires_grad: true }, 4, 1);
    expect(sync.name).to.equal('bn1');
    expect(sync.layer).to.be.instanceOf(nn.BatchNorm2d);
    const gn = nn.buildNormLayer({ type: 'GN', num_groups: 2 }, 4);
    expect(gn.name).to.equal('gn');
    expect(gn.layer).to.be.instanceOf(nn.GroupNorm);
    const frozen = nn.buildNormLayer({ type: 'BN', requires_grad: false }, 4);
    expect(frozen.layer.trainableParameters()).to.have.length(0);
    expect(() => nn.buildNormLayer({ type: 'LayerNorm2d' }, 4, '', 'model.backbone.norm_cfg')).to.throw(SegkitError, "model.backbone.norm_cfg.type: unknown norm layer type 'LayerNorm2d'");
    expect(() => nn.buildNormLayer({ type: 'GN' }, 4)).to.throw(SegkitError, /num_groups/);
  });

  describe('batchNormWithBatchStats (hand-written gradient)', () => {
    /** The reference: tfjs differentiating the formula over tf.moments. */
    const reference = (x: tf.Tensor4D, weight: tf.Tensor1D | null, bias: tf.Tensor1D | null, eps: number): tf.Tensor4D => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      const normalized = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
      return (weight && bias ? tf.add(tf.mul(normalized, weight), bias) : normalized) as tf.Tensor4D;
    };
    // Values and gradients (x, then weight and bias when present) of sum(y · r) for a random r.
    const valueAndGrads = (normalize: typeof reference, affine: boolean, seed: number) =>
      tf.tidy(() => {
        const x = tf.add(tf.mul(tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', seed), 3), 1.5) as tf.Tensor4D;
        const weight = affine ? (tf.randomUniform([5], 0.5, 2, 'float32', seed + 1) as tf.Tensor1D) : null;
        const bias = affine ? (tf.randomUniform([5], -1, 1, 'float32', seed + 2) as tf.Tensor1D) : null;
        const r = tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', seed + 3);
        const inputs = [x, ...(affine ? [weight!, bias!] : [])];
        const f = (...args: tf.Tensor[]) => tf.sum(tf.mul(normalize(args[0] as tf.Tensor4D, affine ? (args[1] as tf.Tensor1D) : null, affine ? (args[2] as tf.Tensor1D) : null, 1e-5), r));
        const y = normalize(x, weight, bias, 1e-5);
        return [y, ...tf.grads(f)(inputs)].map((t) => Array.from(t.dataSync()));
      });

    for (const affine of [true, false]) {
      it(`matches tfjs differentiating the formula over tf.moments to 1e-4 (${affine ? 'affine' : 'no affine'})`, () => {
        const actual = valueAndGrads((x, w, b, eps) => nn.batchNormWithBatchStats(x, w, b, eps), affine, 7);
        const expected = valueAndGrads(reference, affine, 7);
        expect(actual.length).to.equal(affine ? 4 : 2);
        actual.forEach((values, i) => values.forEach((v, j) => expect(v, `output ${i} element ${j}`).to.be.closeTo(expected[i]![j]!, 1e-4)));
      });
    }

    for (const affine of [true, false]) {
      it(`with relu: matches tfjs differentiating relu(formula) to 1e-4 (${affine ? 'affine' : 'no affine'})`, () => {
        const actual = valueAndGrads((x, w, b, eps) => nn.batchNormWithBatchStats(x, w, b, eps, undefined, true), affine, 9);
        const expected = valueAndGrads((x, w, b, eps) => tf.relu(reference(x, w, b, eps)), affine, 9);
        expect(actual.length).to.equal(affine ? 4 : 2);
        expect(actual[0]!.filter((v) => v === 0).length, 'some outputs clipped').to.be.greaterThan(10);
        expect(actual[0]!.filter((v) => v > 0).length, 'some outputs pass').to.be.greaterThan(10);
        actual.forEach((values, i) => values.forEach((v, j) => expect(v, `output ${i} element ${j}`).to.be.closeTo(expected[i]![j]!, 1e-4)));
      });
    }

    it('hands the batch statistics to onMoments', () => {
      const seen: number[][] = [];
      tf.tidy(() => {
        nn.batchNormWithBatchStats(x(), null, null, 1e-5, (mean, variance) => seen.push([mean.dataSync()[0]!, variance.dataSync()[0]!]));
      });
      expect(seen).to.have.length(1);
      expect(seen[0]![0]).to.be.closeTo(2.5, 1e-6);
      expect(seen[0]![1]).to.be.closeTo(1.25, 1e-6);
    });
  });

  it('train forward/backward through BatchNorm2d leaves no tensor behind', () => {
    const bn = new nn.BatchNorm2d(3);
    const input = tf.randomNormal([2, 3, 3, 3]) as tf.Tensor4D;
    expectNoLeak(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(bn.forward(input))));
      value.dispose();
      tf.dispose(grads);
    });
    input.dispose();
    bn.dispose();
  });
});
