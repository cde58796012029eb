import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { nn, SegkitError } from '../src';
import { expectClose, expectNoLeak } from './nn-helpers';

describe('nn layers', () => {
  it('ReLU and buildActivation', () => {
    expectClose(new nn.ReLU().forward(tf.tensor([-1, 0, 2])), [0, 0, 2]);
    expectClose(nn.buildActivation({ type: 'LeakyReLU', negative_slope: 0.1 }).forward(tf.tensor([-1, 2])) as tf.Tensor, [-0.1, 2]);
    expect(nn.buildActivation({ type: 'ReLU', inplace: true })).to.be.instanceOf(nn.ReLU);
    expect(() => nn.buildActivation({ type: 'Swish' }, 'model.decode_head.act_cfg')).to.throw(SegkitError, "model.decode_head.act_cfg.type: unknown activation type 'Swish'");
  });

  it('Dropout2d drops whole channels scaled by 1/(1−p) in train mode only', () => {
    const dropout = new nn.Dropout2d(0.5);
    const x = tf.ones([2, 3, 3, 16]) as tf.Tensor4D;
    const y = dropout.forward(x);
    const values = y.arraySync() as number[][][][];
    const channelValues = new Set<number>();
    for (let n = 0; n < 2; n++) {
      for (let c = 0; c < 16; c++) {
        const channel = new Set(values[n]!.flatMap((row) => row.map((pixel) => pixel[c]!)));
        expect(channel.size, 'one value per channel').to.equal(1);
        channelValues.add([...channel][0]!);
      }
    }
    expect([...channelValues].sort()).to.deep.equal([0, 2]); // 32 channels: both outcomes occur (fails with probability 2⁻³¹)
    dropout.eval();
    expectClose(dropout.forward(x), Array(2 * 9 * 16).fill(1));
  });

  it('MaxPool2d 3×3 stride 2 padding 1 ignores the padding; AvgPool2d counts it', () => {
    const x = tf.tensor4d([-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16], [1, 4, 4, 1]);
    expectClose(new nn.MaxPool2d(3, 2, 1).forward(x), [-1, -2, -5, -6]);
    // Top-left window covers 1, 2, 5, 6 plus 5 zeros: sum 14 over 9 cells.
    expectClose(new nn.AvgPool2d(3, 2, 1).forward(tf.neg(x) as tf.Tensor4D), [14 / 9, (2 + 3 + 4 + 6 + 7 + 8) / 9, (5 + 6 + 9 + 10 + 13 + 14) / 9, (6 + 7 + 8 + 10 + 11 + 12 + 14 + 15 + 16) / 9]);
    expect(new nn.MaxPool2d(2).forward(x).shape).to.deep.equal([1, 2, 2, 1]);
  });

  it('AdaptiveAvgPool2d uses PyTorch bins: 5 → 3 is [0,2), [1,4), [3,5)', () => {
    expect(nn.adaptiveBins(5, 3)).to.deep.equal([[0, 2], [1, 4], [3, 5]]);
    // x[r][c] = 5r + c → each output is 5·(row-bin mean) + (column-bin mean).
    const x = tf.tensor4d(Array.from({ length: 25 }, (_, i) => i), [1, 5, 5, 1]);
    const means = [0.5, 2, 3.5];
    expectClose(new nn.AdaptiveAvgPool2d(3).forward(x), means.flatMap((r) => means.map((c) => 5 * r + c)));
    expectClose(new nn.AdaptiveAvgPool2d(1).forward(x), [12]);
    expectClose(new nn.AdaptiveAvgPool2d([5, 1]).forward(x), [2, 7, 12, 17, 22]);
  });

  describe('resize (F.interpolate bilinear)', () => {
    // x[h][w] = a[h] + 10·b[w] is separable, so bilinear output = A[h'] + 10·B[w'] with A, B the 1-D results.
    const input = (a: number[], b: number[]) => tf.tensor4d(a.flatMap((av) => b.map((bv) => av + 10 * bv)), [1, a.length, b.length, 1]);
    const expected = (a: number[], b: number[]) => a.flatMap((av) => b.map((bv) => av + 10 * bv));

    it('align_corners=false: 2 → 4 (up) and 4 → 3 (down)', () => {
      const y = nn.resize(input([1, 3], [1, 2, 3, 4]), [4, 3]);
      // 2→4 sources −0.25→0, 0.25, 0.75, 1.25→clamped; 4→3 sources 1/6, 1.5, 17/6.
      expectClose(y, expected([1, 1.5, 2.5, 3], [1 + 1 / 6, 2.5, 4 - 1 / 6]), 1e-4);
    });

    it('align_corners=true: 2 → 4 and 4 → 3', () => {
      const y = nn.resize(input([1, 3], [1, 2, 3, 4]), [4, 3], { alignCorners: true });
      expectClose(y, expected([1, 1 + 2 / 3, 1 + 4 / 3, 3], [1, 2.5, 4]), 1e-4);
    });

    it('gradient of align_corners=false downsampling uses the half-pixel weights', () => {
      const gradient = tf.grad((x: tf.Tensor) => tf.sum(nn.resize(x as tf.Tensor4D, [1, 3])))(tf.zeros([1, 1, 4, 1]));
      // out0 = 5/6·x0 + 1/6·x1, out1 = (x1 + x2)/2, out2 = 1/6·x2 + 5/6·x3.
      expectClose(gradient, [5 / 6, 2 / 3, 2 / 3, 5 / 6], 1e-5);
    });

    it('nearest follows PyTorch (floor of dst·in/out) and Upsample counts its output as FLOPs', () => {
      expectClose(nn.resize(tf.tensor4d([1, 2, 3], [1, 1, 3, 1]), [1, 5], { mode: 'nearest' }), [1, 1, 2, 2, 3]);
      const upsample = new nn.Upsample({ scale_factor: 2, mode: 'bilinear', align_corners: false });
      const { result, counter } = nn.countFlops(() => upsample.forward(tf.zeros([1, 2, 2, 3]) as tf.Tensor4D));
      expect(result.shape).to.deep.equal([1, 4, 4, 3]);
      expect(counter.total).to.equal(48);
    });

    it('leaves no tensor behind', () => {
      const x = tf.randomNormal([1, 3, 5, 2]) as tf.Tensor4D;
      expectNoLeak(() => {
        nn.resize(x, [7, 4]).dispose();
        tf.grad((t: tf.Tensor) => tf.sum(nn.resize(t as tf.Tensor4D, [2, 9])))(x).dispose();
      });
      x.dispose();
    });
  });
});
