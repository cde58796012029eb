import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import type { NativeAddon } from '../src/engine';
import { expectClose, makeRandom, randomValues, requireAddon } from './helpers';

function referenceMatMul(a: Float32Array, b: Float32Array, m: number, n: number, k: number, transposeA: boolean, transposeB: boolean): Float32Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const av = transposeA ? a[p * m + i] : a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += av * (transposeB ? b[j * k + p] : b[p * n + j]);
    }
  return Float32Array.from(c);
}

describe('native GEMM', function () {
  this.timeout(30000);
  let addon: NativeAddon;
  let threadsBefore = 1;
  let kernelBefore = '';
  before(() => {
    addon = requireAddon();
    threadsBefore = addon.numThreads();
    kernelBefore = addon.microKernel();
  });
  after(() => {
    addon.setNumThreads(threadsBefore);
    addon.setMicroKernel(kernelBefore);
  });

  it('picks a micro-kernel at run time and has a thread pool', () => {
    if (!process.env.SEGKIT_NATIVE_ISA) expect(addon.microKernels()[0]).to.equal(addon.microKernel()); // CPUID's fastest
    expect(addon.microKernels()).to.include('portable');
    for (const name of addon.microKernels()) expect(['avx512', 'avx2-fma', 'portable']).to.include(name);
    expect(addon.numThreads()).to.be.at.least(1);
    expect(addon.setMicroKernel('no-such-kernel')).to.equal(false);
  });

  // Every ISA is one micro-kernel source (native/gemm_microkernel.inl); each this CPU runs is checked.
  for (const kernel of ['avx512', 'avx2-fma', 'portable']) {
    for (const threads of [1, 2, 3]) {
      it(`matches a float64 reference (${kernel}, ${threads} thread(s), edge tiles, offsets, transposes)`, function () {
        if (!addon.setMicroKernel(kernel)) this.skip();
        addon.setNumThreads(threads);
        const random = makeRandom(threads * 10 + kernel.length);
        // Tiles: 6x8 (portable), 6x16 (avx2), 12x32 (avx512); k past KC (512) splits the depth. With
        // threads, C of many rows is split by rows sharing packed B ([300, 3100, 40]: past NC = 3072
        // columns too), C of few rows (below 2 x threads x MC, fewer than columns) by columns sharing packed A;
        // a small C over a k of at least 2 KC steps per thread by k, in equal shares, into partials summed at the
        // end ([25, 50, 2100]: split between 2 threads, not 3).
        const shapes = [[1, 1, 1], [7, 19, 5], [6, 16, 256], [12, 32, 64], [13, 33, 17], [50, 33, 300], [130, 17, 9], [200, 90, 530], [150, 70, 1030],
          [40, 300, 600], [20, 3200, 30], [300, 3100, 40], [77, 1000, 520], [20, 40, 6200], [30, 70, 4500], [25, 50, 2100]];
        for (const [m, n, k] of shapes) {
          const transposeA = random.next() < 0.5, transposeB = random.next() < 0.5;
          const offset = random.int(0, 5);
          const a = randomValues(random, [m * k + offset]), b = randomValues(random, [k * n + offset]);
          const c = new Float32Array(m * n + offset);
          addon.matMul(a, offset, b, offset, c, offset, m, n, k, transposeA, transposeB);
          const expected = referenceMatMul(a.subarray(offset), b.subarray(offset), m, n, k, transposeA, transposeB);
          expectClose(c.subarray(offset), expected, `gemm ${m}x${n}x${k} tA=${transposeA} tB=${transposeB}`);
        }
        // A transposed B, packed by 8 x 8 transposes on the AVX paths: slivers of 32 (48) columns whose last is
        // 26 (42) wide, in blocks of 16, 8 and 2 columns, over 37 rows (8-row blocks and a 5-row tail).
        const [m, n, k] = [45, 90, 37];
        const a = randomValues(random, [m * k]), b = randomValues(random, [k * n]);
        const c = new Float32Array(m * n);
        addon.matMul(a, 0, b, 0, c, 0, m, n, k, false, true);
        expectClose(c, referenceMatMul(a, b, m, n, k, false, true), `gemm ${m}x${n}x${k} tB=true`);
      });
    }
  }

  it('rejects arguments of the wrong type instead of crashing', () => {
    expect(() => addon.matMul([] as unknown as Float32Array, 0, new Float32Array(1), 0, new Float32Array(1), 0, 1, 1, 1, false, false)).to.throw(/Float32Array/);
    expect(tf.memory().numTensors).to.be.a('number');
  });
});
