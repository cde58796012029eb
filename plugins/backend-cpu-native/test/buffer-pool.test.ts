import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { nn } from '@segkit/core';
import { BufferPool, POOL_ENV } from '../src/buffer-pool';
import type { NativeAddon } from '../src/engine';
import { NATIVE_BACKEND_NAME, type NativeBackend } from '../src/native-backend';
import { checkNoTensorLeaks, dataMovementCases, elementwiseCases, expectSameAsCpu, makeRandom, randomValues, requireAddon, runOn } from './helpers';

const NATIVE = NATIVE_BACKEND_NAME;

/** Runs fn with the native backend active (tfjs switches synchronously between cpu-like backends). */
function onNative<T>(fn: () => T): T {
  const previous = tf.getBackend();
  void tf.setBackend(NATIVE);
  try {
    return fn();
  } finally {
    void tf.setBackend(previous);
  }
}

describe('native output buffer pool', function () {
  this.timeout(120000);
  let addon: NativeAddon;
  let backend: NativeBackend;
  before(() => {
    addon = requireAddon();
    backend = tf.findBackend(NATIVE) as NativeBackend;
  });
  checkNoTensorLeaks();

  describe('reads and ownership', () => {
    it('an array from dataSync() or data() keeps its values after its tensor is disposed and arrays are reused', async () => {
      const previous = tf.getBackend();
      await tf.setBackend(NATIVE);
      try {
        backend.outputBuffers.clear(); // free arrays of length 4 left by earlier tests would be reused too
        const a = tf.tensor1d([1, 2, 3, 4]), b = tf.tensor1d([10, 20, 30, 40]);
        const [sum, difference] = [tf.add(a, b), tf.sub(a, b)];
        const synced = sum.dataSync();
        const awaited = await difference.data();
        tf.dispose([sum, difference, tf.neg(a)]); // the negation's array (never read) goes back to the pool
        const reusedBefore = backend.outputBuffers.stats.reused;
        const products = [tf.mul(a, b), tf.mul(b, a)]; // the same length: the first takes the freed array
        expect(backend.outputBuffers.stats.reused).to.equal(reusedBefore + 1);
        expect(Array.from(products[0].dataSync())).to.deep.equal([10, 40, 90, 160]);
        expect(Array.from(synced)).to.deep.equal([11, 22, 33, 44]);
        expect(Array.from(awaited)).to.deep.equal([-9, -18, -27, -36]);
        tf.dispose([a, b, ...products]);
      } finally {
        await tf.setBackend(previous);
      }
    });

    it("never recycles a user's array given to tf.tensor()", () => {
      onNative(() => {
        const user = Float32Array.of(1, 2, 3, 4);
        const t = tf.tensor1d(user);
        expect(t.dataSync()).to.equal(user); // tfjs stores it as is: reads need no copy
        t.dispose();
        expect(backend.outputBuffers.owns(user)).to.equal(false);
        const outputs = tf.tidy(() => [tf.neg(tf.ones([4])), tf.neg(tf.ones([4]))]);
        for (const output of outputs) expect(backend.data.get(output.dataId).values).to.not.equal(user);
        expect(Array.from(user)).to.deep.equal([1, 2, 3, 4]);
        tf.dispose(outputs);
      });
    });

    it('keeps an array while any tensor holds it: refCount sharing (reshape), one array under two data ids, a view', () => {
      onNative(() => {
        const x = tf.tensor1d([1, 2, 3, 4, 5, 6]);
        const y = tf.neg(x); // pooled
        const reshaped = tf.reshape(y, [2, 3]); // same data id, refCount 2
        const yValues = backend.data.get(y.dataId).values as Float32Array;
        // As the in-place optimizer steps do: the same array under a second data id, and a view of it (cpu's Slice).
        const alias = tf.engine().makeTensorFromTensorInfo(backend.makeTensorInfo([6], 'float32', yValues));
        const view = tf.engine().makeTensorFromTensorInfo(backend.makeTensorInfo([2], 'float32', yValues.subarray(4)));
        const freeBefore = backend.outputBuffers.stats.freeBytes;
        for (const holder of [y, reshaped, alias]) {
          holder.dispose();
          const other = tf.tidy(() => tf.neg(tf.neg(x))); // would take a freed length-6 array
          expect((backend.data.get(other.dataId).values as Float32Array).buffer).to.not.equal(yValues.buffer);
          other.dispose();
        }
        expect(Array.from(backend.data.get(view.dataId).values as Float32Array)).to.deep.equal([-5, -6]); // (a read would take it out of the pool)
        view.dispose(); // the last holder: the array goes back to the pool
        expect(backend.outputBuffers.stats.freeBytes).to.be.greaterThan(freeBefore);
        const reuser = tf.neg(x);
        expect((backend.data.get(reuser.dataId).values as Float32Array).buffer).to.equal(yValues.buffer);
        tf.dispose([x, reuser]);
      });
    });

    it('a read hands out the stored array (no copy) and takes it out of the pool; cpu kernels reading inputs do not', () => {
      onNative(() => {
        const x = tf.tensor2d([1, -2, 3, -4], [2, 2]);
        const y = tf.relu(x);
        const stored = backend.data.get(y.dataId).values;
        expect(backend.outputBuffers.owns(stored)).to.equal(true);
        // GatherNd is cpu's kernel: it reads y through bufferSync, which leaves the array pooled.
        const gathered = tf.tidy(() => tf.gatherND(y, tf.tensor2d([[1, 0], [0, 0]], [2, 2], 'int32')));
        expect(backend.outputBuffers.owns(stored)).to.equal(true);
        expect(Array.from(gathered.dataSync())).to.deep.equal([3, 1]);
        expect(y.dataSync()).to.equal(stored);
        expect(backend.outputBuffers.owns(stored)).to.equal(false);
        tf.dispose([x, y, gathered]);
        expect(Array.from(stored as Float32Array)).to.deep.equal([1, 0, 3, 0]);
      });
    });
  });

  describe('bounds', () => {
    it('keeps at most its capacity in free arrays, dropping the least recently used lengths first', () => {
      const pool = new BufferPool(64); // 16 floats
      const take = (length: number) => {
        const array = pool.take(length, 'zeroed');
        pool.addHolder(array); // a tensor holds it
        return array;
      };
      const [a, b, c] = [take(8), take(4), take(8)];
      for (const array of [a, b, c]) pool.dropHolder(array);
      expect(pool.stats).to.deep.include({ freeBytes: 48, evicted: 1, allocated: 3 }); // a (oldest) went to make room for c
      const d = take(4);
      expect(d).to.not.equal(b); // a fresh view object of b's buffer
      expect(d.buffer).to.equal(b.buffer);
      pool.dropHolder(d);
      pool.dropHolder(take(20)); // larger than the capacity: never kept
      expect(pool.stats.freeBytes).to.equal(48);
      pool.setCapacityBytes(16);
      expect(pool.stats.freeBytes).to.equal(16); // the 8-float array went, the recently used 4-float one stayed
      pool.clear();
      expect(pool.stats.freeBytes).to.equal(0);
    });

    it('serves a length without a free array of its own from the smallest free one of up to 1.25x it, as a view of its front', () => {
      const pool = new BufferPool(1024);
      const take = (length: number) => {
        const array = pool.take(length, 'zeroed');
        pool.addHolder(array);
        return array;
      };
      const [ten, eleven, twenty] = [take(10), take(11), take(20)];
      ten.fill(7);
      for (const array of [ten, eleven, twenty]) pool.dropHolder(array);
      const nine = take(9); // 10 and 11 are within 9 x 1.25 = 11.25: the smaller one
      expect(nine.length).to.equal(9);
      expect(nine.buffer).to.equal(ten.buffer);
      expect(Array.from(nine)).to.deep.equal(new Array(9).fill(0));
      expect(pool.stats).to.deep.include({ reused: 1, allocated: 3, freeBytes: (11 + 20) * 4 });
      const fifteen = take(15); // 20 is over 15 x 1.25 = 18.75: a fresh array
      expect([ten.buffer, eleven.buffer, twenty.buffer]).to.not.include(fifteen.buffer);
      expect(pool.stats).to.deep.include({ reused: 1, allocated: 4 });
      pool.dropHolder(nine); // the whole buffer goes back: a take of its full length gets all of it
      const tenAgain = take(10);
      expect([tenAgain.buffer, tenAgain.length]).to.deep.equal([ten.buffer, 10]);
      for (const array of [fifteen, tenAgain]) pool.dropHolder(array);
      expect(pool.stats.freeBytes).to.equal((10 + 11 + 15 + 20) * 4);
    });

    it('keeps free arrays only up to the high-water mark of held bytes (+ a headroom), handing each dropped array to onEvict', () => {
      const pool = new BufferPool(1024, 0);
      const evicted: ArrayBufferLike[] = [];
      pool.onEvict = (array) => evicted.push(array.buffer);
      const take = (length: number) => {
        const array = pool.take(length, 'overwritten');
        pool.addHolder(array);
        return array;
      };
      const [a, b] = [take(4), take(4)]; // 32 bytes held: the high-water mark
      pool.dropHolder(a);
      expect(pool.stats).to.deep.include({ inUseBytes: 16, peakInUseBytes: 32, freeBytes: 16 });
      const c = take(8); // no free array of 8 to 10 floats: fresh, 48 bytes held, no room left for a
      expect(pool.stats).to.deep.include({ inUseBytes: 48, peakInUseBytes: 48, freeBytes: 0, evicted: 1 });
      expect(evicted).to.deep.equal([a.buffer]);
      pool.dropHolder(b);
      pool.dropHolder(c); // both fit under the mark again
      expect(pool.stats).to.deep.include({ inUseBytes: 0, freeBytes: 48, evicted: 1 });
      const withHeadroom = new BufferPool(1024, 16);
      const [d, e] = [withHeadroom.take(4, 'overwritten'), withHeadroom.take(4, 'overwritten')];
      for (const array of [d, e]) withHeadroom.addHolder(array);
      withHeadroom.addHolder(withHeadroom.take(8, 'overwritten'));
      for (const array of [d, e]) withHeadroom.dropHolder(array); // 16 bytes of room + 16 of headroom
      expect(withHeadroom.stats).to.deep.include({ inUseBytes: 32, freeBytes: 32, evicted: 0 });
    });

    it("the native backend's pool hands a dropped array's whole pages back to the OS (they read as zeros), nothing else", () => {
      expect(backend.outputBuffers.onEvict).to.be.a('function');
      const pageFloats = 1024; // 4 KiB pages (64 KiB ones are whole multiples of them)
      const array = new Float32Array(64 * pageFloats).fill(1);
      addon.releasePages(array);
      const zeros = array.filter((value) => value === 0).length;
      expect(zeros % pageFloats).to.equal(0);
      expect(zeros).to.be.at.least(array.length / 2); // all but the two partial pages at the ends
      expect(array.filter((value) => value === 1).length).to.equal(array.length - zeros);
    });

    it('zeroes a reused array for kernels that accumulate; 0 MB disables reuse; a bad size is one clear error', () => {
      const pool = new BufferPool(1024);
      const first = pool.take(3, 'zeroed');
      pool.addHolder(first);
      first.set([1, 2, 3]);
      pool.dropHolder(first);
      expect(Array.from(pool.take(3, 'zeroed'))).to.deep.equal([0, 0, 0]);

      const disabled = BufferPool.fromEnvironment({ [POOL_ENV]: '0' });
      const array = disabled.take(3, 'zeroed');
      disabled.addHolder(array);
      disabled.dropHolder(array);
      expect(disabled.owns(array)).to.equal(false);
      expect(disabled.stats.freeBytes).to.equal(0);
      expect(() => BufferPool.fromEnvironment({ [POOL_ENV]: 'lots' })).to.throw(`${POOL_ENV}: expected a number of megabytes >= 0, got 'lots'`);
    });

    it('the backend pool stays within its capacity over many output sizes', () => {
      const capacity = backend.outputBuffers.capacityBytes;
      backend.outputBuffers.setCapacityBytes(1 << 16);
      try {
        onNative(() => {
          for (let length = 1000; length < 3000; length += 7) tf.tidy(() => {
            tf.neg(tf.neg(tf.fill([length], 1)));
          });
        });
        expect(backend.outputBuffers.stats.freeBytes).to.be.at.most(1 << 16);
      } finally {
        backend.outputBuffers.setCapacityBytes(capacity);
      }
    });
  });

  /**
   * Every kernel that takes its output without zeroing must write all of it: reused arrays are
   * filled with NaN first, so any element left unwritten (or accumulated into) differs from cpu.
   */
  describe('kernels on reused (poisoned) arrays match cpu, on each ISA path', () => {
    let kernelBefore = '';
    before(() => {
      backend.outputBuffers.poisonReused = true;
      kernelBefore = addon.microKernel();
    });
    after(() => {
      backend.outputBuffers.poisonReused = false;
      addon.setMicroKernel(kernelBefore);
    });

    /** Runs fn on native once (its outputs' lengths go to the pool), then compares a second run with cpu. */
    const expectSameAsCpuReused = (label: string, fn: () => tf.Tensor | tf.Tensor[], tolerance?: number) => {
      runOn(NATIVE, fn);
      expectSameAsCpu(NATIVE, label, fn, tolerance);
    };
    let reusedBefore = 0;
    beforeEach(() => (reusedBefore = backend.outputBuffers.stats.reused));
    afterEach(function () {
      if (this.currentTest?.state === 'passed') expect(backend.outputBuffers.stats.reused, 'reused arrays').to.be.greaterThan(reusedBefore + 20);
    });

    for (const kernel of ['avx512', 'avx2-fma']) {
      it(`${kernel}: a conv / BN / pooling / resize / softmax / matMul network, forward and tf.grads`, function () {
        if (!addon.setMicroKernel(kernel)) this.skip();
        const random = makeRandom(kernel.length * 31);
        for (let i = 0; i < 4; i++) {
          const [batch, size, inC, outC, classes] = [random.int(1, 3), 2 * random.int(2, 6), random.int(1, 9), random.int(2, 20), random.int(2, 7)];
          const x = randomValues(random, [batch, size, size, inC]);
          const filter = randomValues(random, [3, 3, inC, outC]);
          const weight = randomValues(random, [outC, classes]);
          const [mean, offset, scale] = [0, 1, 2].map(() => randomValues(random, [outC]));
          const variance = randomValues(random, [outC]).map((v) => v + 2);
          const target = randomValues(random, [batch, size, size, classes]);
          expectSameAsCpuReused(`network x[${batch},${size},${size},${inC}] out ${outC} classes ${classes}`, () => {
            const net = (xt: tf.Tensor4D, ft: tf.Tensor4D, wt: tf.Tensor2D) => {
              const conv = tf.conv2d(xt, ft, 1, 'same');
              // No ReLU before the max pool: ties route its gradient differently on cpu.
              const affine = tf.add(tf.batchNorm(conv, tf.tensor1d(mean), tf.tensor1d(variance), tf.tensor1d(offset), tf.tensor1d(scale)), tf.mul(conv, 0.5)) as tf.Tensor4D;
              const pooled = tf.concat([tf.maxPool(affine, 2, 2, 'same'), tf.avgPool(affine, 2, 2, 'same')], 3);
              const normalised = nn.batchNormWithBatchStats(pooled, null, null, 1e-5, undefined, true);
              // Without half-pixel centres: cpu's ResizeBilinearGrad ignores them.
              const features = tf.slice(tf.image.resizeBilinear(normalised, [size, size]), [0, 0, 0, 0], [-1, -1, -1, outC]);
              const logits = tf.reshape(tf.fused.matMul({ a: tf.reshape(features, [-1, outC]), b: wt, activation: 'relu', bias: tf.ones([classes]) }), [batch, size, size, classes]);
              const probabilities = tf.softmax(tf.transpose(tf.transpose(logits, [0, 2, 1, 3]), [0, 2, 1, 3]));
              return { loss: tf.sum(tf.mul(tf.log(tf.add(probabilities, 1e-3)), tf.tensor4d(target, [batch, size, size, classes]))), probabilities };
            };
            const [xt, ft, wt] = [tf.tensor4d(x, [batch, size, size, inC]), tf.tensor4d(filter, [3, 3, inC, outC]), tf.tensor2d(weight, [outC, classes])] as const;
            const grads = tf.grads((...args: tf.Tensor[]) => net(args[0] as tf.Tensor4D, args[1] as tf.Tensor4D, args[2] as tf.Tensor2D).loss)([xt, ft, wt]);
            return [net(xt, ft, wt).probabilities, ...grads];
          }, 1e-3);
        }
      });
    }

    it('data movement and element-wise kernels (random shapes and dtypes)', () => {
      for (const { label, run } of [...dataMovementCases(71, 12), ...elementwiseCases(73, 12)]) expectSameAsCpuReused(label, run);
    });
  });
});
