import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { convKernels } from '../src/conv-kernels';
import { jsConvEngine } from '../src/js-engine';
import { copyKernels, replaceKernels } from '../src/kernel-registry';
import { dataKernels } from '../src/data-kernels';
import { elementwiseKernels } from '../src/elementwise-kernels';
import { jsElementwiseEngine } from '../src/js-elementwise';
import { checkNoTensorLeaks, dataMovementCases, elementwiseCases, expectSameAsCpu, makeRandom, randomConvCase, randomValues, requireAddon } from './helpers';

// The TypeScript kernels run on a private test backend, so the shared `cpu` backend stays the
// reference (registerFastCpuKernels itself is checked in a child process below).
const JS_TEST_BACKEND = 'segkit-js-conv-test';

describe('TypeScript im2col + GEMM convolution kernels (cpu fallback)', function () {
  this.timeout(60000);
  before(() => {
    requireAddon(); // registers gradients
    if (!tf.findBackendFactory(JS_TEST_BACKEND)) {
      tf.registerBackend(JS_TEST_BACKEND, () => new MathBackendCPU(), -1);
      copyKernels('cpu', JS_TEST_BACKEND);
      replaceKernels(JS_TEST_BACKEND, { ...convKernels(jsConvEngine), ...dataKernels, ...elementwiseKernels(jsElementwiseEngine) });
    }
  });
  checkNoTensorLeaks();

  it('forward and both gradients match tfjs cpu on random shapes', () => {
    const random = makeRandom(11);
    for (let i = 0; i < 12; i++) {
      const c = randomConvCase(random, { gradients: i % 3 !== 0 });
      const x = randomValues(random, [c.batch, c.inH, c.inW, c.inC]), w = randomValues(random, [c.kH, c.kW, c.inC, c.outC]);
      const gradients = c.dilations[0] === 1 && c.dilations[1] === 1;
      expectSameAsCpu(JS_TEST_BACKEND, `js conv ${c.label}`, () => {
        const xt = tf.tensor4d(x, [c.batch, c.inH, c.inW, c.inC]), wt = tf.tensor4d(w, [c.kH, c.kW, c.inC, c.outC]);
        const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad, 'NHWC', c.dilations)));
        return [tf.conv2d(xt, wt, c.strides, c.pad, 'NHWC', c.dilations), ...(gradients ? tf.grads(f)([xt, wt]) : [])];
      });
    }
  });

  it('data movement kernels match tfjs cpu', () => {
    for (const { label, run } of dataMovementCases(12, 24)) expectSameAsCpu(JS_TEST_BACKEND, label, run);
  });

  it('broadcasting binary ops and reductions match tfjs cpu', () => {
    for (const { label, run } of elementwiseCases(13, 12)) expectSameAsCpu(JS_TEST_BACKEND, label, run);
  });

  it('registerFastCpuKernels() replaces the cpu conv kernels and keeps their results', () => {
    const script = `
      const tf = require('@tensorflow/tfjs-core');
      require('@tensorflow/tfjs-backend-cpu');
      tf.env().set('IS_TEST', true);
      require('@segkit/core').nn.ensureGradientsRegistered();
      const { registerFastCpuKernels } = require(${JSON.stringify(path.resolve(__dirname, '../src/js-kernels'))});
      const run = () => tf.tidy(() => {
        const x = tf.randomUniform([2, 7, 6, 5], -1, 1, 'float32', 1), w = tf.randomUniform([3, 3, 5, 4], -1, 1, 'float32', 2);
        const [dx, dw] = tf.grads((a, b) => tf.sum(tf.square(tf.conv2d(a, b, 2, 'same'))))([x, w]);
        return [...tf.conv2d(x, w, 1, 'same').dataSync(), ...dx.dataSync(), ...dw.dataSync()];
      });
      const before = run(), originalKernel = tf.getKernel('Conv2DBackpropFilter', 'cpu').kernelFunc;
      registerFastCpuKernels();
      registerFastCpuKernels();
      const after = run();
      const scale = Math.max(...before.map(Math.abs));
      const error = Math.max(...before.map((v, i) => Math.abs(v - after[i])));
      console.log(JSON.stringify({ replaced: tf.getKernel('Conv2DBackpropFilter', 'cpu').kernelFunc !== originalKernel, relativeError: error / scale }));
    `;
    const output = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    const result = JSON.parse(output.trim().split('\n').pop() as string) as { replaced: boolean; relativeError: number };
    expect(result.replaced).to.equal(true);
    expect(result.relativeError).to.be.below(1e-4);
  });
});
