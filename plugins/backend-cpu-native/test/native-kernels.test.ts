import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { float32Values } from '../src/kernel-registry';
import { checkNoTensorLeaks, dataMovementCases, elementwiseCases, expectClose, expectSameAsCpu, makeRandom, randomConvCase, randomValues, requireAddon, runOn, type ConvCase } from './helpers';

const NATIVE = 'native';
const CASES = 12;

function convInputs(random: ReturnType<typeof makeRandom>, c: ConvCase, filterShape: number[]) {
  return { x: randomValues(random, [c.batch, c.inH, c.inW, c.inC]), w: randomValues(random, filterShape) };
}

describe('native backend kernels match the cpu backend', function () {
  this.timeout(60000);
  before(() => requireAddon());
  checkNoTensorLeaks();

  it('Conv2D and FusedConv2D forward (strides, dilations, same/valid/explicit padding)', () => {
    const random = makeRandom(1);
    for (let i = 0; i < CASES; i++) {
      const c = randomConvCase(random);
      const { x, w } = convInputs(random, c, [c.kH, c.kW, c.inC, c.outC]);
      const bias = randomValues(random, [c.outC]);
      const activation = random.pick(['linear', 'relu', 'relu6', 'leakyrelu', 'elu', 'sigmoid', 'prelu'] as const);
      const alpha = randomValues(random, [c.outC]);
      expectSameAsCpu(NATIVE, `conv2d ${c.label}`, () => {
        const xt = tf.tensor4d(x, [c.batch, c.inH, c.inW, c.inC]);
        const wt = tf.tensor4d(w, [c.kH, c.kW, c.inC, c.outC]);
        return [
          tf.conv2d(xt, wt, c.strides, c.pad, 'NHWC', c.dilations),
          tf.fused.conv2d({ x: xt, filter: wt, strides: c.strides, pad: c.pad, dilations: c.dilations, bias: tf.tensor1d(bias), activation, preluActivationWeights: tf.tensor1d(alpha), leakyreluAlpha: 0.1 }),
        ];
      });
    }
  });

  it('Conv2D forward over more input channels than a KC step (im2col blocks within one filter tap and across two), dilated and strided', () => {
    const random = makeRandom(13);
    // [h, w, inC, outC, strides, dilations, pad]
    const shapes = [[6, 5, 520, 8, [1, 1], [2, 2], 'same'], [7, 9, 530, 5, [2, 1], [1, 1], [[0, 0], [1, 2], [2, 0], [0, 0]]]] as const;
    for (const [h, w, inC, outC, strides, dilations, pad] of shapes) {
      const x = randomValues(random, [1, h, w, inC]), filter = randomValues(random, [3, 3, inC, outC]);
      expectSameAsCpu(NATIVE, `conv2d x[1,${h},${w},${inC}] out${outC} s${strides} d${dilations}`, () => [
        tf.conv2d(tf.tensor4d(x, [1, h, w, inC]), tf.tensor4d(filter, [3, 3, inC, outC]), strides as [number, number], pad as 'same', 'NHWC', dilations as [number, number]),
      ]);
    }
  });

  it('Conv2D gradients through tf.grads (Conv2DBackpropInput with strides, Conv2DBackpropFilter)', () => {
    const random = makeRandom(2);
    for (let i = 0; i < CASES; i++) {
      const c = randomConvCase(random, { gradients: true });
      const { x, w } = convInputs(random, c, [c.kH, c.kW, c.inC, c.outC]);
      const seed = random.int(0, 1000);
      expectSameAsCpu(NATIVE, `conv2d grads ${c.label}`, () => {
        const f = (xt: tf.Tensor4D, wt: tf.Tensor4D) => {
          const y = tf.conv2d(xt, wt, c.strides, c.pad);
          return tf.sum(tf.mul(y, tf.randomUniform(y.shape, -1, 1, 'float32', seed)));
        };
        return tf.grads(f as (...args: tf.Tensor[]) => tf.Scalar)([tf.tensor4d(x, [c.batch, c.inH, c.inW, c.inC]), tf.tensor4d(w, [c.kH, c.kW, c.inC, c.outC])]);
      });
    }
  });

  it('Conv2D gradients on both sides of the filter gradient\'s orientation switch (fewer output pixels than output channels), over long reductions and wide channels', () => {
    const random = makeRandom(12);
    // [batch, h, w, inC, outC, stride, pad]: large maps, then pixels < outC (64 < 70, 9 < 16, 4 < 5), and 16 = 16;
    // 9216 pixels, a reduction the GEMM splits between threads (from 4 KC steps of 512 per thread);
    // 40 and 36 input channels, whose im2col slivers of 32 columns lie within one filter tap or across two.
    const shapes = [[2, 24, 24, 5, 7, 1, 'same'], [1, 34, 34, 2, 3, 1, 'valid'], [4, 4, 4, 40, 70, 1, 'same'], [1, 3, 3, 8, 16, 1, 'same'], [1, 5, 6, 3, 5, 3, 'valid'], [1, 4, 4, 6, 16, 1, 'same'], [2, 47, 45, 3, 5, 2, 'same'],
      [2, 64, 72, 3, 6, 1, 'same'], [2, 13, 11, 40, 24, 2, 'same'], [1, 12, 10, 36, 33, 1, 'valid']] as const;
    for (const [batch, h, w, inC, outC, stride, pad] of shapes) {
      const c: ConvCase = { batch, inH: h, inW: w, inC, outC, kH: 3, kW: 3, strides: [stride, stride], dilations: [1, 1], pad, label: `x[${batch},${h},${w},${inC}] out${outC} s${stride} ${pad}` };
      const { x, w: filter } = convInputs(random, c, [3, 3, inC, outC]);
      expectSameAsCpu(NATIVE, `conv2d grads ${c.label}`, () => {
        const f = (xt: tf.Tensor4D, wt: tf.Tensor4D) => {
          const y = tf.conv2d(xt, wt, c.strides, c.pad);
          return tf.sum(tf.mul(y, tf.randomUniform(y.shape, -1, 1, 'float32', 5)));
        };
        return tf.grads(f as (...args: tf.Tensor[]) => tf.Scalar)([tf.tensor4d(x, [batch, h, w, inC]), tf.tensor4d(filter, [3, 3, inC, outC])]);
      });
    }
  });

  it('DepthwiseConv2dNative, FusedDepthwiseConv2D and their gradients (channel multipliers)', () => {
    const random = makeRandom(3);
    for (let i = 0; i < CASES; i++) {
      const c = randomConvCase(random, { gradients: i % 2 === 0 });
      const multiplier = random.int(1, 3);
      const filterShape: [number, number, number, number] = [c.kH, c.kW, c.inC, multiplier];
      const { x, w } = convInputs(random, c, filterShape);
      const bias = randomValues(random, [c.inC * multiplier]);
      const gradients = c.dilations[0] === 1 && c.dilations[1] === 1;
      // tfjs's depthwise op wants equal strides
      const strides: [number, number] = [c.strides[0], c.strides[0]];
      expectSameAsCpu(NATIVE, `depthwise m${multiplier} ${c.label}`, () => {
        const xt = tf.tensor4d(x, [c.batch, c.inH, c.inW, c.inC]);
        const wt = tf.tensor4d(w, filterShape);
        const outputs: tf.Tensor[] = [
          tf.depthwiseConv2d(xt, wt, strides, c.pad, 'NHWC', c.dilations),
          tf.fused.depthwiseConv2d({ x: xt, filter: wt, strides, pad: Array.isArray(c.pad) ? 'same' : c.pad, dilations: c.dilations, bias: tf.tensor1d(bias), activation: 'relu' }),
        ];
        if (gradients) {
          const f = (a: tf.Tensor4D, b: tf.Tensor4D) => tf.sum(tf.square(tf.depthwiseConv2d(a, b, strides, c.pad)));
          outputs.push(...tf.grads(f as (...args: tf.Tensor[]) => tf.Scalar)([xt, wt]));
        }
        return outputs;
      });
    }
  });

  it('BatchMatMul and _FusedMatMul with transposes, batch broadcasting and gradients', () => {
    const random = makeRandom(4);
    for (let i = 0; i < CASES; i++) {
      const [m, n, k] = [random.int(1, 40), random.int(1, 40), random.int(1, 70)];
      const transposeA = random.next() < 0.5, transposeB = random.next() < 0.5;
      const batchA = random.pick([[], [3], [1], [2, 3]]);
      const batchB = batchA.length === 0 ? [] : random.pick([batchA, batchA.map(() => 1)]);
      const aShape = [...batchA, ...(transposeA ? [k, m] : [m, k])];
      const bShape = [...batchB, ...(transposeB ? [n, k] : [k, n])];
      const a = randomValues(random, aShape), b = randomValues(random, bShape), bias = randomValues(random, [n]);
      expectSameAsCpu(NATIVE, `matMul a${JSON.stringify(aShape)} b${JSON.stringify(bShape)} tA=${transposeA} tB=${transposeB}`, () => {
        const at = tf.tensor(a, aShape), bt = tf.tensor(b, bShape);
        const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.sin(tf.matMul(x, y, transposeA, transposeB)));
        return [
          tf.matMul(at, bt, transposeA, transposeB),
          tf.fused.matMul({ a: at, b: bt, transposeA, transposeB, bias: tf.tensor1d(bias), activation: 'relu' }),
          // tfjs's BatchMatMul gradient does not reduce broadcast batch axes
          ...(batchA.join() === batchB.join() ? tf.grads(f)([at, bt]) : []),
        ];
      });
    }
  });

  it('MaxPool, AvgPool and their gradients', () => {
    const random = makeRandom(5);
    for (let i = 0; i < CASES; i++) {
      const filter: [number, number] = [random.int(1, 3), random.int(1, 4)];
      const strides: [number, number] = [random.int(1, 3), random.int(1, 3)];
      const shape: [number, number, number, number] = [random.int(1, 3), random.int(filter[0], 9), random.int(filter[1], 10), random.int(1, 19)];
      const pad = random.pick(['same', 'valid', random.int(0, 1)] as const);
      const x = randomValues(random, shape);
      expectSameAsCpu(NATIVE, `pool x${shape} f${filter} s${strides} pad ${pad}`, () => {
        const xt = tf.tensor4d(x, shape);
        return [
          tf.maxPool(xt, filter, strides, pad),
          tf.avgPool(xt, filter, strides, pad),
          tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.maxPool(t as tf.Tensor4D, filter, strides, pad))))(xt),
          tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.avgPool(t as tf.Tensor4D, filter, strides, pad))))(xt),
        ];
      });
    }
  });

  it('ResizeBilinear forward matches cpu; its gradient matches cpu where cpu is right', () => {
    const random = makeRandom(6);
    for (let i = 0; i < CASES; i++) {
      const side = random.int(1, 7);
      const shape: [number, number, number, number] = [random.int(1, 2), side, side, random.int(1, 5)];
      const out = random.int(1, 13);
      const alignCorners = random.next() < 0.5;
      const x = randomValues(random, shape);
      expectSameAsCpu(NATIVE, `resize x${shape} -> ${out} align=${alignCorners}`, () => {
        const xt = tf.tensor4d(x, shape);
        // cpu's ResizeBilinearGrad ignores half-pixel centres, so compare gradients without them
        return [
          tf.image.resizeBilinear(xt, [out, out + 1], alignCorners, !alignCorners),
          tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.image.resizeBilinear(t as tf.Tensor4D, [out, out], alignCorners, false))))(xt),
        ];
      });
    }
  });

  it('ResizeBilinearGrad is the exact adjoint of ResizeBilinear (half-pixel centres, non-square)', () => {
    const random = makeRandom(7);
    for (let i = 0; i < CASES; i++) {
      const shape: [number, number, number, number] = [random.int(1, 2), random.int(1, 6), random.int(1, 7), random.int(1, 4)];
      const size: [number, number] = [random.int(1, 11), random.int(1, 12)];
      const alignCorners = random.next() < 0.3;
      const x = randomValues(random, shape), dy = randomValues(random, [shape[0], ...size, shape[3]]);
      // <resize(x), dy> = <x, resizeGrad(dy)>
      const [forwardDot, adjointDot, gradShape] = runOn(NATIVE, () => {
        const xt = tf.tensor4d(x, shape), dyt = tf.tensor4d(dy, [shape[0], ...size, shape[3]]);
        const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.image.resizeBilinear(t as tf.Tensor4D, size, alignCorners, !alignCorners), dyt)))(xt);
        return [tf.sum(tf.mul(tf.image.resizeBilinear(xt, size, alignCorners, !alignCorners), dyt)), tf.sum(tf.mul(xt, dx)), tf.tensor1d(dx.shape)];
      });
      expect(Array.from(gradShape)).to.deep.equal(shape);
      expectClose(adjointDot, forwardDot, `resize adjoint x${shape} -> ${size}`);
    }
  });

  it('broadcasting binary ops, unary ops and reductions (what batch norm and losses run)', () => {
    for (const { label, run } of elementwiseCases(8, CASES)) {
      expectSameAsCpu(NATIVE, label, () => {
        const [x, ...rest] = run();
        return [x, ...rest, tf.relu(x), tf.relu6(tf.mul(x, 5)), tf.step(x, 0.3), tf.exp(x), tf.log(x), tf.neg(x), tf.square(x), tf.sqrt(x), tf.rsqrt(x), tf.sigmoid(x), tf.tanh(x), tf.abs(x), tf.reciprocal(x)];
      });
    }
  });

  it('FusedBatchNorm with batch statistics, and its gradients (tf.moments + tf.batchNorm)', () => {
    const random = makeRandom(9);
    for (let i = 0; i < CASES; i++) {
      // at least 4 values per channel: with 2 the normalised output is constant and dx is rounding noise
      const shape = [random.int(1, 3), random.int(2, 6), random.int(2, 6), random.int(1, 9)];
      const c = shape[3];
      const x = randomValues(random, shape), gamma = randomValues(random, [c]), beta = randomValues(random, [c]);
      expectSameAsCpu(NATIVE, `batch norm x[${shape}]`, () => {
        const f = (xt: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const { mean, variance } = tf.moments(xt, [0, 1, 2]);
          return tf.sum(tf.sin(tf.batchNorm(xt, mean, variance, b, g, 1e-5)));
        };
        const xt = tf.tensor(x, shape), g = tf.tensor1d(gamma), b = tf.tensor1d(beta);
        return [tf.batchNorm(xt, tf.zeros([c]), tf.ones([c]), undefined, g, 1e-3), ...tf.grads(f as (...t: tf.Tensor[]) => tf.Scalar)([xt, g, b])];
      });
    }
  });

  it('data movement: slice, split, concat, gather and its gradient, transpose, tile, top-k, pad, space/batch', () => {
    for (const { label, run } of dataMovementCases(10, CASES)) expectSameAsCpu(NATIVE, label, run);
  });

  it('TopK in the addon: sorted with ties to the lower index, k up to a whole row; NaN rows, k past 16 and unsorted requests take the other kernels', () => {
    const random = makeRandom(12);
    const ties = [3, 1, 3, 2, 1, 3];
    expect(runOn(NATIVE, () => Object.values(tf.topk(tf.tensor2d(ties, [2, 3]), 2))).map((values) => Array.from(values))).to.deep.equal([
      [3, 3, 3, 2],
      [0, 2, 2, 0],
    ]);
    for (const [shape, k] of [[[4, 64, 64, 2], 1], [[3, 40], 16], [[5, 7], 7], [[2, 30], 20]] as const) {
      const values = Array.from(randomValues(random, [...shape]), (v) => Math.round(v * 4) / 4); // ties
      expectSameAsCpu(NATIVE, `topk [${shape}] k ${k}`, () => Object.values(tf.topk(tf.tensor(values, [...shape]), k)), 0);
    }
    expectSameAsCpu(NATIVE, 'topk with a NaN', () => Object.values(tf.topk(tf.tensor2d([1, NaN, 2, 0, 5, 4], [2, 3]), 2)), 0);
    expectSameAsCpu(NATIVE, 'unsorted topk', () => Object.values(tf.topk(tf.tensor2d([1, 3, 2, 0, 5, 4], [2, 3]), 2, false)), 0);
  });

  it('casts bool and int32 to float32 into Float32Arrays, and reads float32 data stored in other typed arrays as Float32Arrays', () => {
    const previous = tf.getBackend();
    tf.setBackend(NATIVE);
    try {
      tf.tidy(() => {
        const backend = tf.backend() as MathBackendCPU;
        const stored = (t: tf.Tensor) => backend.data.get(t.dataId).values;
        const mask = tf.cast(tf.notEqual(tf.tensor1d([1, 255, 0, 255], 'int32'), 255), 'float32');
        const labels = tf.cast(tf.tensor1d([3, -2, 0, 7], 'int32'), 'float32');
        expect(stored(mask)).to.be.instanceOf(Float32Array);
        expect(stored(labels)).to.be.instanceOf(Float32Array);
        expect(Array.from(mask.dataSync())).to.deep.equal([1, 0, 1, 0]);
        expect(Array.from(labels.dataSync())).to.deep.equal([3, -2, 0, 7]);
        expect(Array.from(tf.mul(tf.tensor2d([[2, 3, 4, 5], [6, 7, 8, 9]]), mask).dataSync())).to.deep.equal([2, 0, 4, 0, 6, 0, 8, 0]);
        // float32 data kept in the array of a bool tensor (what cpu's own Cast returns).
        const shared = backend.makeTensorInfo([4], 'float32', new Uint8Array([1, 0, 1, 1]));
        const values = float32Values(backend, shared);
        expect(values).to.be.instanceOf(Float32Array);
        expect(Array.from(values!)).to.deep.equal([1, 0, 1, 1]);
        backend.disposeIntermediateTensorInfo(shared);
      });
    } finally {
      tf.setBackend(previous);
    }
  });

  it('keeps the cpu kernels it does not replace, and no kernel leaks intermediate tensors', () => {
    expect(tf.getKernelsForBackend(NATIVE).length).to.be.at.least(tf.getKernelsForBackend('cpu').length);
    expect(tf.getKernel(tf.Conv2D, NATIVE)?.kernelFunc).to.not.equal(tf.getKernel(tf.Conv2D, 'cpu')?.kernelFunc);
    expectSameAsCpu(NATIVE, 'softmax + mean', () => {
      const x = tf.tensor2d([1, 2, 3, 4, 5, 7], [2, 3]);
      return [tf.softmax(x), tf.mean(x, 1)];
    });
  });
});
