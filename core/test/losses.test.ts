import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { accuracy, checkDecodeLossConfig, computeDecodeLosses, loadClassWeight, parseLosses, parseNpy, weightReduceLoss, type Loss, type LossCallOptions, type PixelSampler } from '../src';
import { tempTree } from '../src/testing';

const EPS = 1.1920928955078125e-7;
const npy = (base64: string) => Buffer.from(base64, 'base64');
// Written by numpy.save(np.array([0.8, 0.2, 1.5], dtype=...)) / a (1, 2) float32 array.
const NPY_F4 = 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIArNzEw/zcxMPgAAwD8=';
const NPY_F8 = 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqamZmZmZnpP5qZmZmZmck/AAAAAAAA+D8=';
const NPY_BIG_ENDIAN = 'k05VTVBZAQB2AHsnZGVzY3InOiAnPmY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo/TMzNPkzMzT/AAAA=';
const NPY_INT64 = 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAAAAAAAAAAAAAQAAAAAAAAA=';
const NPY_2D = 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIArNzEw/zcxMPg==';

function noLeak<T>(fn: () => T): T {
  const before = tf.memory().numTensors;
  const result = fn();
  expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  return result;
}
const read = (t: tf.Tensor) => {
  const data = Array.from(t.dataSync());
  t.dispose();
  return data;
};

describe('losses helpers', () => {
  describe('accuracy', () => {
    // 4 pixels, 3 classes; top-1 = [0, 2, 1, 0], top-2 adds [1, 1, 2, 2]
    const scores = [[0.6, 0.3, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.4, 0.25, 0.35]];
    it('is top-k accuracy in percent with ε in numerator and denominator, ignored pixels left out', () => {
      noLeak(() => {
        const pred = tf.tensor4d(scores.flat(), [1, 2, 2, 3]);
        const target = tf.tensor3d([[[0, 1], [1, 255]]], [1, 2, 2], 'int32');
        expect(read(accuracy(pred, target))[0]).to.be.closeTo(((2 + EPS) * 100) / (4 + EPS), 1e-4);
        expect(read(accuracy(pred, target, { ignoreIndex: 255 }))[0]).to.be.closeTo(((2 + EPS) * 100) / (3 + EPS), 1e-4);
        const [top1, top2] = accuracy(pred, target, { topk: [1, 2], ignoreIndex: 255 });
        expect(read(top1!)[0]).to.be.closeTo(200 / 3, 1e-4);
        expect(read(top2!)[0]).to.be.closeTo(100, 1e-4);
        // thresh: only predictions scoring above 0.55 count → pixel 0 (0.6) only
        expect(read(accuracy(pred, target, { thresh: 0.55, ignoreIndex: 255 }))[0]).to.be.closeTo(100 / 3, 1e-4);
        tf.dispose([pred, target]);
      });
    });

    it('gives 100 for an all-ignored batch, 0 for an empty one, and rejects topk > C', () => {
      noLeak(() => {
        const pred = tf.zeros([1, 1, 2, 2]);
        const ignored = tf.tensor3d([[[255, 255]]], [1, 1, 2], 'int32');
        expect(read(accuracy(pred, ignored, { ignoreIndex: 255 }))[0]).to.be.closeTo(100, 1e-4);
        const empty = tf.zeros([0, 3]);
        const noTargets = tf.zeros([0], 'int32');
        expect(read(accuracy(empty, noTargets))).to.deep.equal([0]);
        expect(() => accuracy(pred, ignored, { topk: 3 })).to.throw('accuracy: topk 3 exceeds the number of classes 2');
        tf.dispose([pred, ignored, empty, noTargets]);
      });
    });
  });

  describe('parseLosses', () => {
    it("sums the means of keys containing 'loss' (anywhere), lists as sums of means, logs all with loss last", async () => {
      const a = tf.tensor1d([1, 3]);
      const b = tf.scalar(0.5);
      const acc = tf.scalar(90);
      const parts = [tf.scalar(1), tf.tensor1d([2, 4])];
      const before = tf.memory().numTensors;
      const { loss, logVars } = await parseLosses({ 'decode.loss_ce': a, 'decode.acc_seg': acc, 'aux.my_loss': b, 'aux.loss_list': parts, 'decode.dice': b });
      expect(Object.keys(logVars)).to.deep.equal(['decode.loss_ce', 'decode.acc_seg', 'aux.my_loss', 'aux.loss_list', 'decode.dice', 'loss']);
      expect(logVars['decode.loss_ce']).to.equal(2);
      expect(logVars['aux.loss_list']).to.equal(4);
      expect(logVars.loss).to.equal(2 + 0.5 + 4);
      expect(loss.rank).to.equal(0);
      expect(await loss.data()).to.deep.equal(new Float32Array([6.5]));
      loss.dispose();
      expect(tf.memory().numTensors).to.equal(before);
      tf.dispose([a, b, acc, ...parts]);
    });

    it('a single loss entry is also the total: one tensor handed over, nothing left behind', async () => {
      const a = tf.tensor1d([1, 3]);
      const before = tf.memory().numTensors;
      const { loss, logVars } = await parseLosses({ 'decode.loss_ce': a });
      expect(logVars).to.deep.equal({ 'decode.loss_ce': 2, loss: 2 });
      expect(tf.memory().numTensors).to.equal(before + 1);
      tf.dispose([loss, a]);
    });

    it('rejects an entry that is not a tensor or a list of tensors, naming the key', async () => {
      const a = tf.scalar(1);
      const before = tf.memory().numTensors;
      let error: unknown;
      await parseLosses({ 'decode.loss_ce': a, 'aux.loss_ce': 3 }).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(Error).with.property('message', 'parseLosses: aux.loss_ce is not a tensor or list of tensors, got number');
      expect(tf.memory().numTensors).to.equal(before);
      a.dispose();
    });
  });

  describe('weightReduceLoss', () => {
    it('weights, then reduces; avgFactor divides with ε; sum + avgFactor is an error', () => {
      noLeak(() => {
        const loss = tf.tensor2d([[1, 2], [3, 4]]);
        const weight = tf.tensor2d([[1, 0], [1, 0.5]]);
        expect(read(weightReduceLoss(loss, weight, 'none'))).to.deep.equal([1, 0, 3, 2]);
        expect(read(weightReduceLoss(loss, weight, 'sum'))).to.deep.equal([6]);
        expect(read(weightReduceLoss(loss, weight, 'mean'))).to.deep.equal([1.5]);
        expect(read(weightReduceLoss(loss, weight, 'mean', 3))[0]).to.be.closeTo(6 / (3 + EPS), 1e-6);
        expect(read(weightReduceLoss(loss, null, 'none', 3))).to.deep.equal([1, 2, 3, 4]);
        expect(() => weightReduceLoss(loss, null, 'sum', 3)).to.throw("avg_factor can not be used with reduction 'sum'");
        const wrong = tf.ones([2]);
        expect(() => weightReduceLoss(loss, wrong, 'mean')).to.throw('the weight of shape [2] does not match the loss of shape [2,2]');
        tf.dispose([loss, weight, wrong]);
      });
    });
  });

  describe('loadClassWeight', () => {
    let dir: string;
    before(() => {
      dir = tempTree({ 'w.json': '[0.8, 0.2]', 'bad.json': '[0.8, ', 'obj.json': '{"a": 1}', 'w.pkl': 'x' });
      for (const [name, data] of Object.entries({ 'f4.npy': NPY_F4, 'f8.npy': NPY_F8, 'be.npy': NPY_BIG_ENDIAN, 'i8.npy': NPY_INT64, '2d.npy': NPY_2D })) {
        fs.writeFileSync(path.join(dir, name), npy(data));
      }
      fs.writeFileSync(path.join(dir, 'garbage.npy'), 'not numpy');
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const opts = (numClasses?: number) => ({ path: 'model.decode_head.loss_decode.class_weight', configDir: dir, numClasses });

    it('reads lists, .json and float32/float64 .npy files', () => {
      expect(loadClassWeight(null, opts(2))).to.equal(null);
      expect(loadClassWeight([1, 2], opts(2))).to.deep.equal([1, 2]);
      expect(loadClassWeight('w.json', opts(2))).to.deep.equal([0.8, 0.2]);
      expect(loadClassWeight('./f8.npy', opts(3))).to.deep.equal([0.8, 0.2, 1.5]);
      expect(loadClassWeight(path.join(dir, 'f4.npy'), opts(3))).to.deep.equal([Math.fround(0.8), Math.fround(0.2), 1.5]);
    });

    it('gives one clear error per kind of bad input', () => {
      const where = 'model.decode_head.loss_decode.class_weight';
      expect(() => loadClassWeight([1, 2, 3], opts(2))).to.throw(`${where}: expected 2 class weights (one per class, num_classes = 2), got 3`);
      expect(() => loadClassWeight('nope.json', opts())).to.throw(`${where}: class weight file 'nope.json' not found`);
      expect(() => loadClassWeight('bad.json', opts())).to.throw(`${where}: class weight file 'bad.json' is not valid JSON`);
      expect(() => loadClassWeight('obj.json', opts())).to.throw(`${where}: class weight file 'obj.json' must contain a JSON list of numbers, got object`);
      expect(() => loadClassWeight('w.pkl', opts())).to.throw("must be a .json list of numbers or a 1-D float .npy array, got a '.pkl' extension");
      expect(() => loadClassWeight('be.npy', opts())).to.throw(`${where}: 'be.npy' is not a 1-D float32/float64 .npy array: dtype '>f4'`);
      expect(() => loadClassWeight('i8.npy', opts())).to.throw("dtype '<i8' (expected '<f4' or '<f8')");
      expect(() => loadClassWeight('2d.npy', opts())).to.throw('shape (1, 2) is not 1-D');
      expect(() => loadClassWeight('garbage.npy', opts())).to.throw('missing the \\x93NUMPY magic');
      expect(() => parseNpy(npy(NPY_F4).subarray(0, 130), 'w.npy')).to.throw('expected 3 values, the file is truncated');
    });
  });
});

/** A loss that records what it was called with and returns Σ(logits·weight)·scale. */
class RecordingLoss implements Loss {
  readonly usesPixelWeight: boolean;
  calls: { logits: number[]; weight?: number[]; ignoreIndex?: number }[] = [];
  constructor(readonly lossName: string, private readonly scale = 1, usesPixelWeight = true) {
    this.usesPixelWeight = usesPixelWeight;
  }
  forward(logits: tf.Tensor, _labels: tf.Tensor, options: LossCallOptions = {}): tf.Tensor {
    this.calls.push({ logits: Array.from(logits.dataSync()), weight: options.weight ? Array.from(options.weight.dataSync()) : undefined, ignoreIndex: options.ignoreIndex });
    return tf.tidy(() => tf.mul(tf.sum(options.weight ? tf.mul(tf.sum(logits, -1), options.weight) : logits), this.scale));
  }
}

class HalfSampler implements PixelSampler {
  sample(_logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
    return tf.fill(labels.shape, 0.5);
  }
}

describe('computeDecodeLosses', () => {
  it('resizes the logits bilinearly to the label size (align_corners false/true), like F.interpolate', () => {
    const logits = tf.tensor4d([0, 1], [1, 1, 2, 1]);
    const labels = tf.zeros([1, 1, 4], 'int32');
    for (const [alignCorners, expected] of [[false, [0, 0.25, 0.75, 1]], [true, [0, 1 / 3, 2 / 3, 1]]] as const) {
      const loss = new RecordingLoss('loss_x');
      const before = tf.memory().numTensors;
      const result = computeDecodeLosses(logits, labels, { losses: [loss], alignCorners, ignoreIndex: 255, headName: 'model.decode_head' });
      expect(tf.memory().numTensors, 'only loss_x and acc_seg remain').to.equal(before + 2);
      loss.calls[0]!.logits.forEach((v, i) => expect(v).to.be.closeTo(expected[i]!, 1e-6));
      expect(loss.calls[0]!.ignoreIndex).to.equal(255);
      expect(read(result.acc_seg!)[0]).to.be.closeTo(100, 1e-4);
      tf.dispose(Object.values(result));
    }
    tf.dispose([logits, labels]);
  });

  it("sums losses of equal loss_name (three 'loss_ce' give 3×) and passes the sampler's map as weight to every loss", () => {
    const logits = tf.ones([1, 2, 2, 1]);
    const labels = tf.zeros([1, 2, 2], 'int32');
    const losses = [new RecordingLoss('loss_ce'), new RecordingLoss('loss_ce'), new RecordingLoss('loss_dice', 3, false), new RecordingLoss('loss_ce')];
    const before = tf.memory().numTensors;
    const result = computeDecodeLosses(logits, labels, { losses, sampler: new HalfSampler(), alignCorners: false, ignoreIndex: 0, headName: 'model.decode_head' });
    expect(Object.keys(result)).to.deep.equal(['loss_ce', 'loss_dice', 'acc_seg']);
    expect(read(result.loss_ce!)).to.deep.equal([3 * 2]); // 4 pixels × 0.5 each, three times
    expect(read(result.loss_dice!)).to.deep.equal([3 * 2]);
    result.acc_seg!.dispose();
    expect(tf.memory().numTensors).to.equal(before);
    for (const loss of losses) expect(loss.calls[0]!.weight).to.deep.equal([0.5, 0.5, 0.5, 0.5]);
    expect(() => computeDecodeLosses(logits, tf.zeros([2, 2, 2], 'int32'), { losses, alignCorners: false, ignoreIndex: 255, headName: 'model.decode_head' })).to.throw(
      'model.decode_head: expected labels [N,H,W] with N = 1, got shape [2,2,2]',
    );
    tf.dispose([logits, labels]);
  });

  it('checkDecodeLossConfig warns about names without "loss" and samplers with weight-ignoring losses', () => {
    const warnings: string[] = [];
    checkDecodeLossConfig([new RecordingLoss('ce'), new RecordingLoss('loss_dice', 1, false)], new HalfSampler(), 'model.auxiliary_head.0', (m) => warnings.push(m));
    expect(warnings).to.have.length(2);
    expect(warnings[0]).to.equal(
      "model.auxiliary_head.0.loss_decode.0: loss_name 'ce' does not contain 'loss', so its value is logged but not added to the trained total; rename it to 'loss_ce'",
    );
    expect(warnings[1]).to.contain("model.auxiliary_head.0: HalfSampler (sampler) is combined with RecordingLoss 'loss_dice', which ignores pixel weights");
  });
});
