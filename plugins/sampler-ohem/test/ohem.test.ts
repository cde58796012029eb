import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createKernel, type Kernel, type Loss, type PixelSampler } from '@segkit/core';
import { OHEMPixelSampler, plugin } from '../src/index';
import { plugin as crossEntropyPlugin } from '@segkit/loss-cross-entropy';
import { plugin as dicePlugin } from '@segkit/loss-dice';

const quiet = { info: () => undefined, warn: () => undefined };

/** NHWC logits whose softmax is exactly the given probability rows (log of probabilities summing to 1). */
function logitsFromProbabilities(rows: number[][], shape: [number, number, number, number]): tf.Tensor4D {
  return tf.tensor4d(rows.flat().map(Math.log), shape);
}

/** The sampler's 0/1 map as a flat list, checking its shape and that nothing leaked. */
function sampled(sampler: PixelSampler, logits: tf.Tensor, labels: tf.Tensor, ignoreIndex: number, losses: Loss[] = []): number[] {
  const before = tf.memory().numTensors;
  const map = sampler.sample(logits, labels, { ignoreIndex, lossDecode: losses });
  expect(map.shape).to.deep.equal(labels.shape);
  expect(map.dtype).to.equal('float32');
  const result = Array.from(map.dataSync());
  map.dispose();
  expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  return result;
}

describe('sampler-ohem: OHEMPixelSampler', () => {
  let kernel: Kernel;
  const build = (cfg: Record<string, unknown>) => kernel.build('samplers', { type: 'OHEMPixelSampler', ...cfg }, { path: 'model.decode_head.sampler' });
  const ce = (cfg: Record<string, unknown> = {}) => kernel.build('losses', { type: 'CrossEntropyLoss', ...cfg });
  // 2×2 image, 2 classes. Ground-truth probabilities (row-major): 0.9, 0.7, 0.2, 0.6
  let logits: tf.Tensor4D;
  let labels: tf.Tensor3D;
  before(async () => {
    kernel = await createKernel({ plugins: [plugin, crossEntropyPlugin, dicePlugin], backend: 'cpu', logger: quiet });
    logits = logitsFromProbabilities([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]], [1, 2, 2, 2]);
    labels = tf.tensor3d([[[0, 1], [0, 0]]], [1, 2, 2], 'int32');
  });
  after(() => tf.dispose([logits, labels]));

  describe('probability mode (thresh)', () => {
    it('keeps pixels below max(thresh, k-th smallest probability), k = min(min_kept·N, valid − 1), strictly', () => {
      // sorted [0.2, 0.6, 0.7, 0.9]; k = min(2, 3) = 2 → 0.7 beats thresh 0.5 → keep p < 0.7
      expect(sampled(build({ thresh: 0.5, min_kept: 2 }), logits, labels, 255)).to.deep.equal([0, 0, 1, 1]);
      // thresh 0.8 dominates: every pixel below 0.8 (3 > min_kept)
      expect(sampled(build({ thresh: 0.8, min_kept: 2 }), logits, labels, 255)).to.deep.equal([0, 1, 1, 1]);
    });

    it('with min_kept above the valid count uses the largest probability, which itself is not kept', () => {
      expect(sampled(build({ thresh: 0.5, min_kept: 100 }), logits, labels, 255)).to.deep.equal([0, 1, 1, 1]);
    });

    it('never keeps an ignored pixel (its class-0 probability 0.2 would be the hardest)', () => {
      const withIgnored = tf.tensor3d([[[0, 1], [255, 0]]], [1, 2, 2], 'int32');
      // valid probabilities 0.9, 0.7, 0.6 → sorted [0.6, 0.7, 0.9]; k = min(2, 2) → 0.9
      expect(sampled(build({ thresh: 0.5, min_kept: 2 }), logits, withIgnored, 255)).to.deep.equal([0, 1, 0, 1]);
      withIgnored.dispose();
    });

    it("uses the head's ignore index, not 255 (ignore −1: the −1 pixel is left out, a 255 pixel would be a class)", () => {
      const minusOneIgnored = tf.tensor3d([[[0, 1], [-1, 0]]], [1, 2, 2], 'int32');
      // valid probabilities 0.9, 0.7, 0.6 → sorted [0.6, 0.7, 0.9]; k = min(2, 2) → 0.9; pixel 2 never kept.
      // A sampler that compared with 255 would rank pixel 2 (class-0 probability 0.2) and keep [0, 0, 1, 1].
      expect(sampled(build({ thresh: 0.5, min_kept: 2 }), logits, minusOneIgnored, -1)).to.deep.equal([0, 1, 0, 1]);
      minusOneIgnored.dispose();
    });

    it('keeps nothing when no pixel is valid', () => {
      const allIgnored = tf.fill([1, 2, 2], 255, 'int32');
      expect(sampled(build({ thresh: 0.99, min_kept: 2 }), logits, allIgnored, 255)).to.deep.equal([0, 0, 0, 0]);
      allIgnored.dispose();
    });

    it('rejects a single-channel head with a clear error', () => {
      const single = tf.zeros([1, 2, 2, 1]);
      expect(() => build({ thresh: 0.7, min_kept: 2 }).sample(single, labels, { ignoreIndex: 255, lossDecode: [] })).to.throw(
        'model.decode_head.sampler (OHEMPixelSampler): probability mode (thresh) needs softmax logits with one channel per class',
      );
      single.dispose();
    });
  });

  describe('loss mode (no thresh)', () => {
    it('keeps exactly the min(min_kept·N, valid) pixels of largest loss (CE: −ln 0.9, −ln 0.7, −ln 0.2, −ln 0.6)', () => {
      expect(sampled(build({ min_kept: 2 }), logits, labels, 255, [ce()])).to.deep.equal([0, 0, 1, 1]);
      expect(sampled(build({ min_kept: 3 }), logits, labels, 255, [ce()])).to.deep.equal([0, 1, 1, 1]);
      expect(sampled(build({ min_kept: 100 }), logits, labels, 255, [ce()])).to.deep.equal([1, 1, 1, 1]);
    });

    it('sums every loss of the head per pixel, with their own class weights', () => {
      // second CE weights class 1 by 10: pixel 1 (label 1): 11·0.357 = 3.92 > pixel 2: 2·1.609 = 3.22 > pixel 3: 2·0.511
      expect(sampled(build({ min_kept: 2 }), logits, labels, 255, [ce(), ce({ class_weight: [1, 10] })])).to.deep.equal([0, 1, 1, 0]);
    });

    it('pools the budget over the batch and never keeps ignored pixels', () => {
      const batchLogits = logitsFromProbabilities([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4], ...Array(4).fill([0.95, 0.05])], [2, 2, 2, 2]);
      const batchLabels = tf.tensor3d([[[0, 1], [0, 0]], [[0, 0], [0, 255]]], [2, 2, 2], 'int32');
      // budget 2·2 = 4: all four pixels of image 1 are harder than image 2's (−ln 0.95)
      expect(sampled(build({ min_kept: 2 }), batchLogits, batchLabels, 255, [ce()])).to.deep.equal([1, 1, 1, 1, 0, 0, 0, 0]);
      // budget 6 of 7 valid: image 1 plus the first two (equally easy) pixels of image 2 in row-major order
      expect(sampled(build({ min_kept: 3 }), batchLogits, batchLabels, 255, [ce()])).to.deep.equal([1, 1, 1, 1, 1, 1, 0, 0]);
      expect(sampled(build({ min_kept: 50 }), batchLogits, batchLabels, 255, [ce()])).to.deep.equal([1, 1, 1, 1, 1, 1, 1, 0]);
      tf.dispose([batchLogits, batchLabels]);
    });

    it('keeps nothing when no pixel is valid', () => {
      const allIgnored = tf.fill([1, 2, 2], 255, 'int32');
      expect(sampled(build({ min_kept: 2 }), logits, allIgnored, 255, [ce()])).to.deep.equal([0, 0, 0, 0]);
      allIgnored.dispose();
    });

    it('rejects a loss whose reduction none is not per pixel, naming it', () => {
      const dice = kernel.build('losses', { type: 'DiceLoss' });
      const before = tf.memory().numTensors;
      expect(() => build({ min_kept: 2 }).sample(logits, labels, { ignoreIndex: 255, lossDecode: [ce(), dice] })).to.throw(
        "model.decode_head.sampler (OHEMPixelSampler): loss mode ranks pixels by loss, but 'loss_dice' (DiceLoss) returns shape [] with reduction 'none' instead of per-pixel [1,2,2]",
      );
      expect(tf.memory().numTensors).to.equal(before);
    });
  });

  it('validates its options', () => {
    expect(() => build({ min_kept: 1 })).to.throw('model.decode_head.sampler.min_kept: expected an integer > 1, got 1');
    expect(() => build({ minkept: 5 })).to.throw("did you mean 'min_kept'?");
  });

  it('accepts thresh only in (0, 1) or null, naming the config path', () => {
    for (const bad of [-1, 0, 1, 1.5]) {
      expect(() => build({ thresh: bad }), `thresh ${bad}`).to.throw(`model.decode_head.sampler.thresh: expected a probability in (0, 1) or null, got ${bad}`);
    }
    expect(() => build({ thresh: '0.7' })).to.throw('model.decode_head.sampler.thresh: expected a probability in (0, 1) or null');
    expect((build({ thresh: 0.7 }) as OHEMPixelSampler).options.thresh).to.equal(0.7);
    expect((build({ thresh: null }) as OHEMPixelSampler).options.thresh).to.equal(null);
    expect((build({}) as OHEMPixelSampler).options.thresh).to.equal(null);
  });
});
