import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { nn } from '../src';
import { expectClose, expectNoLeak, setValue } from './nn-helpers';

const PLUS = [0, 1, 0, 1, 1, 1, 0, 1, 0];
const INPUT_3X3 = [1, 2, 3, 4, 5, 6, 7, 8, 9];

describe('nn.Conv2d', () => {
  it('stores HWIO weights with PyTorch default init bounds U(±1/√fan_in)', () => {
    const conv = new nn.Conv2d(3, 8, 3);
    expect(conv.weight.shape).to.deep.equal([3, 3, 3, 8]);
    expect(conv.bias!.shape).to.deep.equal([8]);
    const bound = 1 / Math.sqrt(27);
    for (const value of [...conv.weight.dataSync(), ...conv.bias!.dataSync()]) expect(Math.abs(value)).to.be.at.most(bound);
    expect(conv.weight.dataSync().some((v) => Math.abs(v) > bound / 2)).to.equal(true);
    expect([conv.inChannels, conv.outChannels, conv.kernelSize, conv.stride, conv.padding, conv.dilation, conv.groups]).to.deep.equal([3, 8, [3, 3], [1, 1], [0, 0], [1, 1], 1]);
    expect(new nn.Conv2d(3, 8, 3, { bias: false }).bias).to.equal(null);
    conv.dispose();
  });

  it('convolves a 3×3 input with padding 1 (hand values), two output channels and a bias', () => {
    const conv = new nn.Conv2d(1, 2, 3, { padding: 1 });
    // HWIO: channel 0 uses the plus-shaped kernel, channel 1 twice that.
    setValue(conv.weight, PLUS.flatMap((v) => [v, 2 * v]));
    setValue(conv.bias!, [0.5, 0]);
    const y = conv.forward(tf.tensor4d(INPUT_3X3, [1, 3, 3, 1]));
    expect(y.shape).to.deep.equal([1, 3, 3, 2]);
    const plusSums = [7, 11, 11, 17, 25, 23, 19, 29, 23];
    expectClose(y, plusSums.flatMap((v) => [v + 0.5, 2 * v]));
    const strided = new nn.Conv2d(1, 1, 3, { stride: 2, bias: false });
    setValue(strided.weight, PLUS);
    expectClose(strided.forward(tf.tensor4d(INPUT_3X3, [1, 3, 3, 1])), [25]);
    conv.dispose();
    strided.dispose();
  });

  it('dilated convolution: forward and input gradient touch only the dilated taps', () => {
    const conv = new nn.Conv2d(1, 1, 3, { dilation: 2, bias: false });
    setValue(conv.weight, Array(9).fill(1));
    const x = tf.tensor4d(Array.from({ length: 25 }, (_, i) => i), [1, 5, 5, 1]);
    // Taps at rows and columns 0, 2, 4: Σ (5r + c) = 3·5·6 + 3·6 = 108.
    expectClose(conv.forward(x), [108]);
    const gradient = tf.grad((input: tf.Tensor) => tf.sum(conv.forward(input as tf.Tensor4D)))(x);
    const expected = Array.from({ length: 25 }, (_, i) => (Math.floor(i / 5) % 2 === 0 && (i % 5) % 2 === 0 ? 1 : 0));
    expectClose(gradient, expected);
    conv.dispose();
  });

  it('dilation with stride and padding equals the dilated convolution sampled every stride (weights and input gradients too)', () => {
    const conv = new nn.Conv2d(2, 3, 3, { dilation: 2, padding: 2, stride: 2 });
    const x = tf.randomNormal([2, 7, 6, 2]) as tf.Tensor4D;
    const explicit = (input: tf.Tensor4D, weight: tf.Tensor4D) => {
      // Zero-inserted 5×5 kernel, undilated: the textbook definition of a dilation-2 kernel.
      const rows = tf.slice(tf.reshape(tf.stack([weight, tf.zerosLike(weight)], 1), [6, 3, 2, 3]), [0, 0, 0, 0], [5, 3, 2, 3]);
      const full = tf.slice(tf.reshape(tf.stack([rows, tf.zerosLike(rows)], 2), [5, 6, 2, 3]), [0, 0, 0, 0], [5, 5, 2, 3]) as tf.Tensor4D;
      return tf.add(tf.conv2d(input, full, 2, 2), conv.bias!);
    };
    const ours = conv.forward(x);
    expect(ours.shape).to.deep.equal([2, 4, 3, 3]);
    expectClose(ours, Array.from(explicit(x, conv.weight as tf.Tensor4D).dataSync()), 1e-4);
    const loss = (input: tf.Tensor4D, weight: tf.Tensor4D, useOurs: boolean) => {
      if (!useOurs) return tf.sum(tf.square(explicit(input, weight)));
      return tf.sum(tf.square(conv.forward(input)));
    };
    const [gxOurs, gwOurs] = [tf.grad((i: tf.Tensor) => loss(i as tf.Tensor4D, conv.weight as tf.Tensor4D, true))(x), tf.variableGrads(() => loss(x, conv.weight as tf.Tensor4D, true) as tf.Scalar).grads[conv.weight.name]!];
    const [gxRef, gwRef] = tf.grads((i: tf.Tensor, w: tf.Tensor) => loss(i as tf.Tensor4D, w as tf.Tensor4D, false))([x, conv.weight]) as [tf.Tensor, tf.Tensor];
    expectClose(gxOurs, Array.from(gxRef.dataSync()), 1e-3);
    expectClose(gwOurs, Array.from(gwRef.dataSync()), 1e-3);
    conv.dispose();
  });

  it('groups: depthwise (groups = in = out) and general grouped convolution', () => {
    const depthwise = new nn.Conv2d(2, 2, 1, { groups: 2, bias: false });
    expect(depthwise.weight.shape).to.deep.equal([1, 1, 1, 2]);
    setValue(depthwise.weight, [2, 3]);
    expectClose(depthwise.forward(tf.tensor4d([1, 10, 2, 20], [1, 1, 2, 2])), [2, 30, 4, 60]);
    const grouped = new nn.Conv2d(4, 2, 1, { groups: 2, bias: false });
    expect(grouped.weight.shape).to.deep.equal([1, 1, 2, 2]);
    // HWIO [1,1,2,2] = [[w(in0→out0), w(in0→out1)], [w(in1→out0), w(in1→out1)]] per group.
    setValue(grouped.weight, [1, 10, 2, 20]);
    // out0 = 1·x0 + 2·x1 (group 0), out1 = 10·x2 + 20·x3 (group 1).
    expectClose(grouped.forward(tf.tensor4d([1, 2, 3, 4], [1, 1, 1, 4])), [5, 110]);
    expect(() => new nn.Conv2d(3, 4, 1, { groups: 2 })).to.throw(/divisible by groups/);
    depthwise.dispose();
    grouped.dispose();
  });

  it('non-square kernels and strides with equal padding get PyTorch output sizes (conv and max-pool; hand values)', () => {
    expectNoLeak(() => {
      // 1×3 kernel, padding 1: H = 3 + 2 − 1 + 1 = 5, W = 3 + 2 − 3 + 1 = 3 (tfjs's numeric padding gave W = 5).
      const conv = new nn.Conv2d(1, 1, [1, 3], { padding: 1, bias: false });
      setValue(conv.weight, [1, 1, 1]);
      const x = tf.tensor4d(INPUT_3X3, [1, 3, 3, 1]);
      const y = conv.forward(x);
      expect(y.shape).to.deep.equal([1, 5, 3, 1]);
      expectClose(y, [0, 0, 0, 3, 6, 5, 9, 15, 11, 15, 24, 17, 0, 0, 0]);
      // 3×3 max-pool, stride [1, 2], padding 1: H = 3, W = (3 + 2 − 3)/2 + 1 = 2.
      const pooled = new nn.MaxPool2d(3, [1, 2], 1).forward(x);
      expect(pooled.shape).to.deep.equal([1, 3, 2, 1]);
      expectClose(pooled, [5, 6, 8, 9, 8, 9]);
      tf.dispose([x, y, pooled]);
      conv.dispose();
    });
  });

  it('reports MMCV FLOPs (multiply-adds plus bias) while a counter is active', () => {
    const conv = new nn.Conv2d(3, 4, 3, { padding: 1 });
    const x = tf.zeros([2, 5, 5, 3]) as tf.Tensor4D;
    const { counter, result } = nn.countFlops(() => conv.forward(x));
    expect(counter.total).to.equal(2 * 25 * 4 * (27 + 1));
    expect(counter.byModule.get(conv)).to.equal(counter.total);
    result.dispose();
    x.dispose();
    conv.dispose();
  });

  it('forward and backward leave no tensor behind', () => {
    const conv = new nn.Conv2d(2, 4, 3, { padding: 2, dilation: 2, stride: 2 });
    const x = tf.randomNormal([1, 6, 6, 2]) as tf.Tensor4D;
    expectNoLeak(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(conv.forward(x)));
      value.dispose();
      tf.dispose(grads);
    });
    x.dispose();
    conv.dispose();
  });
});
