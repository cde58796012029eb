import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { nn } from '@segkit/core';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { NativeAddon } from '../src/engine';
import { describeNativeBackend, isaRequestProblem } from '../src/isa';
import { checkNoTensorLeaks, elementwiseCases, expectSameAsCpu, makeRandom, randomConvCase, randomValues, requireAddon, type ConvCase, type Padding } from './helpers';
import { packGeometry } from '../src/engine';

const ADDON_PATH = path.resolve(__dirname, '../../build/Release/segkit_native.node');

/** The micro-kernel a fresh process picks with SEGKIT_NATIVE_ISA set to `value`. */
function kernelInChild(value: string): string {
  const script = `process.stdout.write(require(${JSON.stringify(ADDON_PATH)}).microKernel())`;
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, SEGKIT_NATIVE_ISA: value } });
  expect(child.status, child.stderr).to.equal(0);
  return child.stdout;
}

describe('native ISA dispatch: every path this CPU runs matches the cpu backend', function () {
  this.timeout(120000);
  let addon: NativeAddon;
  let kernelBefore = '';
  before(() => {
    addon = requireAddon();
    kernelBefore = addon.microKernel();
  });
  after(() => addon.setMicroKernel(kernelBefore));
  checkNoTensorLeaks();

  it('SEGKIT_NATIVE_ISA forces each available path in a fresh process', () => {
    const names: Record<string, string> = { 'avx512': 'avx512', 'avx2-fma': 'avx2', portable: 'portable' };
    for (const kernel of addon.microKernels()) expect(kernelInChild(names[kernel])).to.equal(kernel);
  });

  it('rejects an unknown or unavailable SEGKIT_NATIVE_ISA in one line', () => {
    expect(isaRequestProblem(addon, undefined)).to.equal(null);
    expect(isaRequestProblem(addon, 'sse9')).to.equal("SEGKIT_NATIVE_ISA: expected one of avx512, avx2, portable, got 'sse9'");
    const avx2Only = { ...addon, microKernels: () => ['avx2-fma', 'portable'], microKernel: () => 'avx2-fma' } as NativeAddon;
    expect(isaRequestProblem(avx2Only, 'avx512')).to.equal('SEGKIT_NATIVE_ISA=avx512: this CPU runs only avx2-fma, portable');
    expect(isaRequestProblem(avx2Only, 'avx2')).to.equal(null);
  });

  it('every ISA path gives the portable path\'s element-wise, batch-norm, pooling and resize results bit for bit', () => {
    // -ffp-contract=off and no reassociation: the vectorised copies do the portable code's float operations.
    const random = makeRandom(31);
    const [rows, channels] = [4 * 9 * 7, 67];
    const shape = [4, 9, 7, channels], n = rows * channels;
    const x = randomValues(random, shape).map((v) => 3 * v + 1), dy = randomValues(random, shape);
    const scale = randomValues(random, [channels]).map((v) => v + 1.5), offset = randomValues(random, [channels]);
    const window = (outH: number, outW: number, k: number, stride: number) => packGeometry({
      batch: 4, inH: 9, inW: 7, inC: channels, outH, outW, outC: channels, kH: k, kW: k, strideH: stride, strideW: stride, dilH: 1, dilW: 1, padTop: 1, padLeft: 1,
    });
    const pool = window(5, 4, 3, 2), resize = window(13, 17, 1, 1);
    const outputsOn = (kernel: string): Float32Array[] => {
      expect(addon.setMicroKernel(kernel)).to.equal(true);
      const out = (length: number) => new Float32Array(length);
      const results: Float32Array[] = [];
      const keep = (...arrays: Float32Array[]) => results.push(...arrays);
      const [y, mean, variance] = [out(n), out(channels), out(channels)];
      addon.batchNormTrain(x, rows, channels, scale, offset, 1e-5, true, y, mean, variance);
      keep(y, mean, variance);
      const [dx, dScale, dOffset] = [out(n), out(channels), out(channels)];
      addon.batchNormReluGrad(x, dy, rows, channels, scale, offset, 1e-5, dx, dScale, dOffset);
      keep(dx, dScale, dOffset);
      const [dx2, dScale2, dOffset2] = [out(n), out(channels), out(channels)];
      addon.batchNormGrad(x, dy, rows, channels, scale, 1e-5, dx2, dScale2, dOffset2);
      keep(dx2, dScale2, dOffset2);
      const normalized = out(n);
      addon.batchNorm(x, normalized, rows, channels, offset, scale, offset);
      keep(normalized);
      const [maxPooled, avgPooled, maxGrad, avgGrad] = [out(4 * 5 * 4 * channels), out(4 * 5 * 4 * channels), out(n), out(n)];
      addon.maxPool(x, maxPooled, pool);
      addon.avgPool(x, avgPooled, pool);
      addon.maxPoolGrad(dy.subarray(0, maxPooled.length), x, maxGrad, pool);
      addon.avgPoolGrad(dy.subarray(0, avgPooled.length), avgGrad, pool);
      keep(maxPooled, avgPooled, maxGrad, avgGrad);
      const [upsampled, upsampledGrad] = [out(4 * 13 * 17 * channels), out(n)];
      addon.resizeBilinear(x, upsampled, resize, false, true);
      addon.resizeBilinearGrad(upsampled, upsampledGrad, resize, false, true);
      keep(upsampled, upsampledGrad);
      for (const code of [0, 2, 4, 5]) {
        const sum = out(n);
        addon.binaryBroadcast(code, x, Int32Array.from(shape), scale, Int32Array.of(channels), sum, Int32Array.from(shape));
        keep(sum);
      }
      for (const code of [0, 2, 7, 8, 12]) {
        const mapped = out(n);
        addon.unary(code, x, mapped, 0.5);
        keep(mapped);
      }
      for (const [op, inner] of [[0, 1], [1, channels], [2, channels]]) {
        const reduced = out(n / (inner === 1 ? channels : rows));
        addon.reduce(op, x, reduced, inner === 1 ? rows : 1, inner === 1 ? channels : rows, inner);
        keep(reduced);
      }
      const [param, buffer] = [out(n), out(n)];
      addon.sgdUpdate(x, dy, y, param, buffer, 0.01, 0.9, 0.1, 5e-4, true);
      keep(param, buffer);
      // Adam: AdamW; L2 decay + amsgrad's first step (no moments yet); amsgrad with a running maximum.
      for (const [decoupled, amsgrad, first] of [[true, false, false], [false, true, true], [false, true, false]]) {
        const [adamParam, avg, avgSq, max] = [out(n), out(n), out(n), out(n)];
        const [moment, momentSq] = first ? [null, null] : [y, normalized.map(Math.abs)];
        addon.adamUpdate(x, dy, moment, momentSq, amsgrad && !first ? dx.map(Math.abs) : null, adamParam, avg, avgSq, amsgrad ? max : null,
          Float64Array.of(1e-3, 0.9, 0.999, 1e-8, 0.01, first ? 1 : 3), decoupled, amsgrad);
        keep(adamParam, avg, avgSq, ...(amsgrad ? [max] : []));
      }
      return results;
    };
    const portable = outputsOn('portable');
    expect(portable.every((values) => values.some((v) => v !== 0))).to.equal(true);
    for (const kernel of addon.microKernels().filter((name) => name !== 'portable')) {
      outputsOn(kernel).forEach((values, i) => {
        const same = values.every((v, j) => Object.is(v, portable[i][j]));
        expect(same, `${kernel}: output ${i} differs from portable`).to.equal(true);
      });
    }
  });

  it('describes the ISA chosen and the thread count', () => {
    const line = describeNativeBackend(addon);
    expect(line).to.match(new RegExp(`^ISA ${addon.microKernel()}\\b`));
    expect(line).to.match(new RegExp(`; ${addon.numThreads()} thread\\(s\\)$`));
  });

  for (const kernel of ['avx512', 'avx2-fma', 'portable']) {
    it(`${kernel}: convolutions (random shapes and pointwise, forward and through tf.grads) and matMul gradients`, function () {
      if (!addon.setMicroKernel(kernel)) this.skip();
      const random = makeRandom(kernel.length * 7);
      // Pointwise (1x1, stride 1, unpadded) convolutions skip im2col: both filter-gradient orientations.
      const pointwise = [[2, 5, 7, 9, 40, 'valid'], [1, 3, 3, 16, 70, 'same'], [3, 8, 8, 33, 5, [[0, 0], [0, 0], [0, 0], [0, 0]]]] as const;
      const cases: ConvCase[] = pointwise.map(([batch, h, w, inC, outC, pad]) => ({ batch, inH: h, inW: w, inC, outC, kH: 1, kW: 1, strides: [1, 1] as [number, number], dilations: [1, 1] as [number, number], pad: pad as Padding, label: `pointwise x[${batch},${h},${w},${inC}] out${outC} ${JSON.stringify(pad)}` }));
      for (let i = 0; i < 8; i++) cases.push(randomConvCase(random, { gradients: true }));
      for (const [index, c] of cases.entries()) {
        if (index >= pointwise.length) {
          // Wider channel counts than the generic cases, so full 12x32 / 6x16 tiles occur.
          c.inC = random.int(1, 40);
          c.outC = random.int(1, 70);
        }
        const x = randomValues(random, [c.batch, c.inH, c.inW, c.inC]);
        const w = randomValues(random, [c.kH, c.kW, c.inC, c.outC]);
        const seed = random.int(0, 1000);
        expectSameAsCpu('native', `${kernel} conv2d ${c.label} in${c.inC} out${c.outC}`, () => {
          const xt = tf.tensor4d(x, [c.batch, c.inH, c.inW, c.inC]);
          const wt = tf.tensor4d(w, [c.kH, c.kW, c.inC, c.outC]);
          const f = (a: tf.Tensor4D, b: tf.Tensor4D) => {
            const y = tf.conv2d(a, b, c.strides, c.pad);
            return tf.sum(tf.mul(y, tf.randomUniform(y.shape, -1, 1, 'float32', seed)));
          };
          return [tf.conv2d(xt, wt, c.strides, c.pad), ...tf.grads(f as (...args: tf.Tensor[]) => tf.Scalar)([xt, wt])];
        });
      }
      for (let i = 0; i < 4; i++) {
        const [m, k, n] = [random.int(1, 80), random.int(1, 600), random.int(1, 80)];
        const a = randomValues(random, [m, k]), b = randomValues(random, [k, n]);
        expectSameAsCpu('native', `${kernel} matMul ${m}x${k}x${n}`, () => {
          const [at, bt] = [tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])];
          return [tf.matMul(at, bt), ...tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D))))([at, bt])];
        });
      }
    });

    it(`${kernel}: batch norm (+ ReLU), pooling, resize and element-wise kernels (random shapes, forward and through tf.grads)`, function () {
      if (!addon.setMicroKernel(kernel)) this.skip();
      const random = makeRandom(kernel.length * 11);
      for (let i = 0; i < 4; i++) {
        // Channel counts past 16 so full AVX-512 vectors, their unrolled bodies and the remainders all run.
        const side = random.int(2, 7); // square: cpu's ResizeBilinearGrad is wrong on non-square images
        const shape = [random.int(1, 3), side, side, random.int(1, 70)] as const;
        const [channels, relu] = [shape[3], i % 2 === 0];
        const x = randomValues(random, shape).map((v) => 4 * v + 2), r = randomValues(random, shape);
        const weight = randomValues(random, [channels]).map((v) => v + 1.5), bias = randomValues(random, [channels]);
        expectSameAsCpu('native', `${kernel} batch norm${relu ? ' + relu' : ''} ${shape.join('x')}`, () => {
          const bn = (...t: tf.Tensor[]) => nn.batchNormWithBatchStats(t[0] as tf.Tensor4D, t[1] as tf.Tensor1D, t[2] as tf.Tensor1D, 1e-5, undefined, relu);
          const params = [tf.tensor4d(x, [...shape]), tf.tensor1d(weight), tf.tensor1d(bias)];
          return [bn(...params), ...tf.grads((...t: tf.Tensor[]) => tf.sum(tf.mul(bn(...t), tf.tensor4d(r, [...shape]))))(params)];
        });
        const filter: [number, number] = [random.int(1, 3), random.int(1, 3)];
        const strides: [number, number] = [random.int(1, 2), random.int(1, 2)];
        const pad = random.pick(['same', 'valid'] as const);
        const size = random.int(1, 12);
        const alignCorners = random.next() < 0.5;
        const image = randomValues(random, shape);
        expectSameAsCpu('native', `${kernel} pool f${filter} s${strides} ${pad}, resize -> ${size} x${shape.join('x')}`, () => {
          const xt = tf.tensor4d(image, [...shape]);
          const pooled = (op: typeof tf.maxPool) => (t: tf.Tensor) => tf.sum(tf.square(op(t as tf.Tensor4D, filter, strides, pad)));
          const resized = (t: tf.Tensor) => tf.sum(tf.square(tf.image.resizeBilinear(t as tf.Tensor4D, [size, size], alignCorners, false)));
          return [tf.maxPool(xt, filter, strides, pad), tf.avgPool(xt, filter, strides, pad), tf.grad(pooled(tf.maxPool))(xt), tf.grad(pooled(tf.avgPool))(xt),
            tf.image.resizeBilinear(xt, [size, size + 1], alignCorners, !alignCorners), tf.grad(resized)(xt)];
        });
      }
      for (const { label, run } of elementwiseCases(kernel.length * 13, 4)) {
        expectSameAsCpu('native', `${kernel} ${label}`, () => {
          const [x, ...rest] = run();
          return [x, ...rest, tf.relu(x), tf.step(x, 0.3), tf.square(x), tf.sqrt(x), tf.rsqrt(x), tf.abs(x), tf.reciprocal(x), tf.softmax(x)];
        });
      }
    });
  }
});
