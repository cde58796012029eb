import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { NativeAddon } from '../src/engine';
import { describeNativeBackend, isaRequestProblem } from '../src/isa';
import { checkNoTensorLeaks, expectSameAsCpu, makeRandom, randomConvCase, randomValues, requireAddon, type ConvCase, type Padding } from './helpers';

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
  }
});
