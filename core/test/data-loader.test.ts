import * as path from 'path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { DataLoader, SegkitError, SeededRandom, batchToTensors, collate, createKernel, type Batch, type Dataset, type Kernel } from '../src';
import { errorMessage, recordingLogger } from '../src/testing';

const toyPlugin = path.join(__dirname, 'data-toy-plugin.js');

async function toyKernel(): Promise<Kernel> {
  return createKernel({ plugins: [toyPlugin], backend: 'cpu', logger: recordingLogger() });
}

function toyLoader(kernel: Kernel, length: number, options: Partial<ConstructorParameters<typeof DataLoader>[1]> & { fail_at?: number } = {}): DataLoader {
  const { fail_at, ...loaderOptions } = options;
  return DataLoader.fromConfig(kernel, { type: 'ToyDataset', length, ...(fail_at !== undefined ? { fail_at } : {}) }, {
    batchSize: 2,
    plugins: [toyPlugin],
    path: 'data.train',
    ...loaderOptions,
  });
}

async function take(loader: DataLoader, n: number): Promise<Batch[]> {
  const batches: Batch[] = [];
  for (let i = 0; i < n; i++) batches.push((await loader.next())!);
  return batches;
}

/** What identifies a batch: its indices and each sample's random draw. */
const fingerprint = (batch: Batch) => ({ indices: batch.indices, draws: batch.img_metas.map((m) => m.draw) });

describe('data: collate', () => {
  it('stacks images to [N,H,W,C] float32 and labels to [N,H,W] int32', () => {
    const sample = (v: number) => ({ img: { data: new Uint8Array(12).fill(v), shape: [2, 2, 3] }, gt_semantic_seg: { data: new Uint8Array(4).fill(v), shape: [2, 2] }, filename: `s${v}` });
    const batch = collate([sample(1), sample(2)], [7, 8]);
    expect(batch.img.shape).to.deep.equal([2, 2, 2, 3]);
    expect(batch.img.data).to.be.instanceOf(Float32Array);
    expect(batch.img.data[12]).to.equal(2);
    expect(batch.gt_semantic_seg!.data).to.be.instanceOf(Int32Array);
    expect(Array.from(batch.gt_semantic_seg!.data)).to.deep.equal([1, 1, 1, 1, 2, 2, 2, 2]);
    expect(batch.indices).to.deep.equal([7, 8]);
    expect(batch.img_metas[1]).to.deep.equal({ filename: 's2' });
  });

  it('samples of different sizes are one clear error', () => {
    const a = { img: { data: new Float32Array(12), shape: [2, 2, 3] }, filename: 'a.png' };
    const b = { img: { data: new Float32Array(18), shape: [3, 2, 3] }, filename: 'b.png' };
    expect(() => collate([a, b])).to.throw(SegkitError, 'cannot batch b.png of shape [3,2,3] with shape [2,2,3]');
  });

  it('batchToTensors makes float32/int32 tensors the caller disposes', () => {
    const before = tf.memory().numTensors;
    const { images, labels } = batchToTensors(collate([{ img: { data: new Float32Array(3), shape: [1, 1, 3] }, gt_semantic_seg: { data: new Uint8Array([4]), shape: [1, 1] } }]));
    expect(images.shape).to.deep.equal([1, 1, 1, 3]);
    expect(labels!.dtype).to.equal('int32');
    tf.dispose([images, labels!]);
    expect(tf.memory().numTensors).to.equal(before);
  });
});

describe('data: DataLoader', function () {
  this.timeout(30000);
  let kernel: Kernel;
  before(async () => {
    kernel = await toyKernel();
  });

  it('without shuffle: batches in order; drop_last drops the short batch; the epoch ends with null', async () => {
    const keep = toyLoader(kernel, 5);
    expect(keep.length).to.equal(3);
    expect((await take(keep, 3)).map((b) => b.indices)).to.deep.equal([[0, 1], [2, 3], [4]]);
    expect(await keep.next()).to.equal(null);
    expect((await keep.next())!.indices).to.deep.equal([0, 1]); // the next epoch
    const drop = toyLoader(kernel, 5, { dropLast: true });
    expect(drop.length).to.equal(2);
    expect((await take(drop, 2)).map((b) => b.indices)).to.deep.equal([[0, 1], [2, 3]]);
    expect(await drop.next()).to.equal(null);
  });

  it('shuffle: each epoch is a permutation, different per epoch, fixed by the seed', async () => {
    const a = toyLoader(kernel, 6, { shuffle: true, infinite: true, seed: 5 });
    const epochs = (await take(a, 6)).map((b) => b.indices);
    const first = epochs.slice(0, 3).flat();
    const second = epochs.slice(3).flat();
    expect([...first].sort()).to.deep.equal([0, 1, 2, 3, 4, 5]);
    expect([...second].sort()).to.deep.equal([0, 1, 2, 3, 4, 5]);
    expect(first).to.not.deep.equal(second);
    const again = toyLoader(kernel, 6, { shuffle: true, infinite: true, seed: 5 });
    expect((await take(again, 6)).map((b) => b.indices)).to.deep.equal(epochs);
    const other = toyLoader(kernel, 6, { shuffle: true, infinite: true, seed: 6 });
    expect((await take(other, 6)).map((b) => b.indices)).to.not.deep.equal(epochs);
  });

  it('every sample gets its own random stream from (seed, epoch, position)', async () => {
    const loader = toyLoader(kernel, 4, { seed: 11, infinite: true });
    const [batch] = await take(loader, 1);
    expect(batch!.img_metas.map((m) => m.draw)).to.deep.equal([SeededRandom.fromSeed(11, 0, 0).random(), SeededRandom.fromSeed(11, 0, 1).random()]);
    expect(batch!.img.data[12]).to.be.closeTo(1 + SeededRandom.fromSeed(11, 0, 1).random(), 1e-6);
    expect(batch!.dataTime).to.be.at.least(0);
  });

  it('state() survives JSON and a resumed loader continues with the same batches and draws', async () => {
    const options = { shuffle: true, infinite: true, dropLast: true, seed: 3 };
    const original = toyLoader(kernel, 5, options);
    await take(original, 3); // crosses into epoch 1
    const state = JSON.parse(JSON.stringify(original.state()));
    expect(state).to.include({ seed: 3, epoch: 1, position: 1 });
    expect(state.rng).to.have.length(4);
    const expected = (await take(original, 4)).map(fingerprint);
    const resumed = toyLoader(kernel, 5, { ...options, seed: 999 });
    resumed.loadState(state);
    expect((await take(resumed, 4)).map(fingerprint)).to.deep.equal(expected);
    expect(() => resumed.loadState({ ...state, position: 9 })).to.throw('past the 2 batches of an epoch');
  });

  it('2 worker threads give exactly the batches of the calling thread, and their errors name the sample', async () => {
    const options = { shuffle: true, infinite: true, seed: 21, batchSize: 3 };
    const inline = toyLoader(kernel, 7, options);
    const threaded = toyLoader(kernel, 7, { ...options, workers: 2 });
    try {
      const expected = (await take(inline, 6)).map(fingerprint);
      const batches = await take(threaded, 6);
      expect(batches.map(fingerprint)).to.deep.equal(expected);
      expect(batches[0]!.img.data).to.be.instanceOf(Float32Array);
      expect(batches[0]!.gt_semantic_seg!.data).to.be.instanceOf(Int32Array);
      // resuming a threaded loader drops its prefetched batches and starts from the state
      threaded.loadState({ ...threaded.state(), epoch: 0, position: 1 });
      expect(fingerprint((await threaded.next())!)).to.deep.equal(expected[1]);
    } finally {
      await threaded.close();
    }
    const broken = toyLoader(kernel, 4, { workers: 1, fail_at: 2 });
    try {
      await broken.next();
      const message = await errorMessage(() => broken.next());
      expect(message).to.equal('toy: sample 2 is broken');
    } finally {
      await broken.close();
    }
  });

  it('a worker that cannot build the dataset fails the request with the build error', async () => {
    const dataset: Dataset = kernel.build('datasets', { type: 'ToyDataset', length: 3 });
    const loader = new DataLoader(dataset, { batchSize: 1, workers: 1, source: { plugins: [toyPlugin], configDir: __dirname, dataset: { type: 'ToyDataset', length: 0 }, path: 'data.val' } });
    try {
      const message = await errorMessage(() => loader.next());
      expect(message).to.contain('data.val.length');
    } finally {
      await loader.close();
    }
  });

  it('bad options are clear errors', async () => {
    expect(await errorMessage(() => toyLoader(kernel, 3, { batchSize: 0 }))).to.equal('data.samples_per_gpu: expected a positive integer, got 0');
    expect(await errorMessage(() => toyLoader(kernel, 3, { batchSize: 4, dropLast: true }))).to.contain('leaves no batch');
    const dataset: Dataset = kernel.build('datasets', { type: 'ToyDataset', length: 3 });
    expect(await errorMessage(() => new DataLoader(dataset, { batchSize: 1, workers: 2 }))).to.contain('workers_per_gpu > 0 needs the dataset config');
  });
});
