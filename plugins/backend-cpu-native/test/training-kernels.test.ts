import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { nn } from '@segkit/core';
import { checkNoTensorLeaks, expectSameAsCpu, makeRandom, randomValues, requireAddon } from './helpers';

const NATIVE = 'native';

/**
 * The training-path kernels against their reference paths on `cpu`: core's batch norm with batch
 * statistics (generic ops there, nn.BATCH_MOMENTS_KERNEL / nn.BATCH_NORM_GRAD_KERNEL here), nn.resize
 * (gathers there, ResizeBilinear and its exact gradient here) and Softmax.
 */
describe('native training kernels match the reference paths on cpu', function () {
  this.timeout(60000);
  before(() => requireAddon());
  checkNoTensorLeaks();

  it('registers the batch-norm kernels core looks for', () => {
    expect(tf.getKernel(nn.BATCH_MOMENTS_KERNEL, NATIVE)).to.not.equal(undefined);
    expect(tf.getKernel(nn.BATCH_NORM_GRAD_KERNEL, NATIVE)).to.not.equal(undefined);
    expect(tf.getKernel(nn.BATCH_NORM_GRAD_KERNEL, 'cpu')).to.equal(undefined);
  });

  it('batchNormWithBatchStats: output, statistics and gradients (x, weight, bias), with and without affine', () => {
    const random = makeRandom(21);
    for (const [shape, affine] of [[[2, 3, 4, 5], true], [[1, 7, 9, 1], true], [[4, 16, 16, 37], false], [[3, 33, 17, 8], true]] as const) {
      const channels = shape[3];
      const x = randomValues(random, shape).map((v) => 4 * v + 2); // an offset mean exercises the centring
      const r = randomValues(random, shape);
      const weight = randomValues(random, [channels]).map((v) => v + 1.5);
      const bias = randomValues(random, [channels]);
      expectSameAsCpu(NATIVE, `batch norm ${shape.join('x')}${affine ? ' affine' : ''}`, () => {
        const xt = tf.tensor4d(x, [...shape]);
        const params = affine ? [tf.tensor1d(weight), tf.tensor1d(bias)] : [];
        const moments: Float32Array[] = []; // copied out: a tensor kept inside the op would trip the leak check
        const f = (...args: tf.Tensor[]) =>
          tf.sum(tf.mul(nn.batchNormWithBatchStats(args[0] as tf.Tensor4D, (args[1] as tf.Tensor1D) ?? null, (args[2] as tf.Tensor1D) ?? null, 1e-5), tf.tensor4d(r, [...shape])));
        const y = nn.batchNormWithBatchStats(xt, params[0] ?? null, params[1] ?? null, 1e-5, (mean, variance) => moments.push(mean.dataSync() as Float32Array, variance.dataSync() as Float32Array));
        const grads = tf.grads(f)([xt, ...params]);
        return [y, ...moments.map((values) => tf.tensor1d(values)), ...grads];
      });
    }
  });

  it('BN + ReLU fused (BATCH_NORM_TRAIN_KERNEL, BATCH_NORM_RELU_GRAD_KERNEL): output, statistics and gradients', () => {
    expect(tf.getKernel(nn.BATCH_NORM_TRAIN_KERNEL, NATIVE)).to.not.equal(undefined);
    expect(tf.getKernel(nn.BATCH_NORM_RELU_GRAD_KERNEL, NATIVE)).to.not.equal(undefined);
    const random = makeRandom(23);
    for (let i = 0; i < 6; i++) {
      const shape = [random.int(1, 3), random.int(1, 9), random.int(1, 9), random.int(1, 40)] as const;
      if (shape[0] * shape[1] * shape[2] < 2) continue;
      const affine = random.next() < 0.7;
      const channels = shape[3];
      const x = randomValues(random, shape).map((v) => 4 * v + 2);
      const r = randomValues(random, shape);
      const weight = randomValues(random, [channels]).map((v) => v + 1.5);
      const bias = randomValues(random, [channels]);
      expectSameAsCpu(NATIVE, `bn+relu ${shape.join('x')}${affine ? ' affine' : ''}`, () => {
        const xt = tf.tensor4d(x, [...shape]);
        const params = affine ? [tf.tensor1d(weight), tf.tensor1d(bias)] : [];
        const moments: Float32Array[] = [];
        const bnRelu = (t: tf.Tensor4D, w: tf.Tensor1D | null, b: tf.Tensor1D | null, onMoments?: (m: tf.Tensor1D, v: tf.Tensor1D) => void) =>
          nn.batchNormWithBatchStats(t, w, b, 1e-5, onMoments, true);
        const f = (...args: tf.Tensor[]) => tf.sum(tf.mul(bnRelu(args[0] as tf.Tensor4D, (args[1] as tf.Tensor1D) ?? null, (args[2] as tf.Tensor1D) ?? null), tf.tensor4d(r, [...shape])));
        const y = bnRelu(xt, params[0] ?? null, params[1] ?? null, (mean, variance) => moments.push(mean.dataSync() as Float32Array, variance.dataSync() as Float32Array));
        return [y, ...moments.map((values) => tf.tensor1d(values)), ...tf.grads(f)([xt, ...params])];
      });
    }
  });

  it('ConvModule (conv + BN + ReLU, train mode) forward and parameter gradients match cpu', () => {
    const random = makeRandom(24);
    const x = randomValues(random, [2, 9, 7, 5]);
    const results: Record<string, Float32Array[]> = {};
    for (const backend of ['cpu', NATIVE]) {
      const previous = tf.getBackend();
      tf.setBackend(backend);
      const module = new nn.ConvModule(5, 12, 3, { padding: 1, norm_cfg: { type: 'BN' } });
      const conv = module.conv.weight;
      tf.tidy(() => conv.assign(tf.tensor(randomValues(makeRandom(25), conv.shape), conv.shape))); // same weights on both backends
      const input = tf.tensor4d(x, [2, 9, 7, 5]);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(module.forward(input))), module.parameters().filter((p) => p.trainable));
      results[backend] = [Float32Array.from(value.dataSync()), ...Object.values(grads).map((g) => Float32Array.from(g.dataSync()))];
      tf.dispose([input, value, ...Object.values(grads)]);
      module.dispose();
      tf.setBackend(previous);
    }
    expect(results[NATIVE]!.length).to.equal(4); // loss, conv weight, bn weight, bn bias
    results[NATIVE]!.forEach((values, i) => values.forEach((v, j) => expect(v, `output ${i} [${j}]`).to.be.closeTo(results.cpu![i]![j]!, 1e-3 * Math.max(1, Math.abs(results.cpu![i]![j]!)))));
  });

  it('BatchNorm2d training updates the running statistics the same way (RUNNING_STATS_KERNEL on native), over three steps', () => {
    expect(tf.getKernel(nn.RUNNING_STATS_KERNEL, NATIVE)).to.not.equal(undefined);
    expect(tf.getKernel(nn.RUNNING_STATS_KERNEL, 'cpu')).to.equal(undefined);
    const random = makeRandom(22);
    const steps = [randomValues(random, [2, 5, 5, 6]), randomValues(random, [2, 5, 5, 6]).map((v) => 3 * v + 1), randomValues(random, [2, 5, 5, 6])];
    for (const momentum of [0.1, null]) {
      expectSameAsCpu(NATIVE, `running stats, momentum ${momentum}`, () => {
        const bn = new nn.BatchNorm2d(6, { momentum });
        for (const x of steps) tf.tidy(() => bn.forward(tf.tensor4d(x, [2, 5, 5, 6])));
        const stats = [bn.runningMean!, bn.runningVar!].map((v) => v.clone());
        bn.dispose();
        return stats;
      }, 1e-6);
    }
  });

  it('BatchNorm2d training updates the running statistics the same way', () => {
    const random = makeRandom(22);
    const x = randomValues(random, [2, 5, 5, 6]);
    expectSameAsCpu(NATIVE, 'running stats', () => {
      const bn = new nn.BatchNorm2d(6);
      bn.forward(tf.tensor4d(x, [2, 5, 5, 6]));
      const stats = [bn.runningMean!, bn.runningVar!].map((v) => v.clone());
      bn.dispose();
      return stats;
    });
  });

  it('nn.resize bilinear: values and gradients, align_corners true and false, up and down', () => {
    const random = makeRandom(23);
    for (const [inShape, size] of [[[2, 4, 6, 3], [8, 12]], [[1, 9, 7, 5], [4, 3]], [[2, 5, 5, 2], [5, 11]], [[1, 1, 3, 4], [6, 2]]] as const) {
      for (const alignCorners of [false, true]) {
        const x = randomValues(random, inShape);
        const r = randomValues(random, [inShape[0], size[0], size[1], inShape[3]]);
        expectSameAsCpu(NATIVE, `resize ${inShape.join('x')} -> ${size.join('x')} alignCorners ${alignCorners}`, () => {
          const xt = tf.tensor4d(x, [...inShape]);
          const resize = (t: tf.Tensor) => nn.resize(t as tf.Tensor4D, [size[0], size[1]], { alignCorners });
          const gradient = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(resize(t), tf.tensor4d(r, [inShape[0], size[0], size[1], inShape[3]]))))(xt);
          return [resize(xt), gradient];
        });
      }
    }
  });

  it('Softmax over the last axis (and its gradient)', () => {
    const random = makeRandom(24);
    for (const shape of [[4, 6, 6, 2], [3, 19], [5, 1], [2, 3, 40]]) {
      const x = randomValues(random, shape).map((v) => 20 * v);
      const r = randomValues(random, shape);
      expectSameAsCpu(NATIVE, `softmax ${shape.join('x')}`, () => {
        const xt = tf.tensor(x, shape);
        const gradient = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.softmax(t), tf.tensor(r, shape))))(xt);
        return [tf.softmax(xt), gradient];
      });
    }
  });
});
