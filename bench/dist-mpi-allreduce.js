#!/usr/bin/env node
// Worker of bench/dist-mpi.js, run under `mpirun -np N`: builds a model from a config (for its
// trainable parameter shapes), then times what one data-parallel iteration spends synchronising
// gradients: (a) the MPI allreduce alone on the 25 MB buckets of those parameter sizes (synthetic
// gradient values), (b) core's allreduceGradients on tensors of those shapes (reading the tensors,
// packing the buckets, allreduce, new tensors), as the runner calls it. Rank 0 prints one JSON line.
//   mpirun -np 2 node bench/dist-mpi-allreduce.js CONFIG [cfg-option ...]
'use strict';
const tf = require('@tensorflow/tfjs-core');
const { loadConfigAndKernel, allreduceGradients, bucketize, DEFAULT_BUCKET_BYTES, setProcessGroup } = require('@segkit/core');
const { initMpi } = require('@segkit/dist-mpi');

const REPEATS = 5;

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function main() {
  const [config, ...cfgOptions] = process.argv.slice(2);
  const group = initMpi('mpi');
  setProcessGroup(group);
  const { config: loaded, kernel } = await loadConfigAndKernel(config, { cfgOptions, backend: 'cpu', logger: { info: () => {}, warn: () => {} } });
  const model = kernel.build('segmentors', loaded.model, { path: 'model' });
  const shapes = model.trainableParameters().map(([, variable]) => variable.shape);
  const sizes = shapes.map((shape) => shape.reduce((a, b) => a * b, 1));
  const parameters = sizes.reduce((a, b) => a + b, 0);
  model.dispose();

  // (a) MPI alone, on buckets of the training's sizes.
  const buckets = bucketize(sizes, DEFAULT_BUCKET_BYTES / 4).map((bucket) => new Float32Array(bucket.reduce((sum, i) => sum + sizes[i], 0)).fill(group.rank + 1));
  const mpiTimes = [];
  for (let repeat = 0; repeat < REPEATS + 1; repeat++) {
    group.barrier();
    const started = performance.now();
    for (const bucket of buckets) group.allreduce(bucket, 'mean');
    if (repeat > 0) mpiTimes.push(performance.now() - started);
  }
  const expected = (group.size + 1) / 2; // mean of 1..N after the first round; later rounds keep it
  if (Math.abs(buckets[0][0] - expected) > 1e-6) throw new Error(`allreduce gave ${buckets[0][0]}, expected ${expected}`);

  // (b) the runner's path: tensors → buckets → allreduce → tensors.
  const names = shapes.map((_, i) => `p${i}`);
  const runnerTimes = [];
  const collectiveTimes = [];
  for (let repeat = 0; repeat < REPEATS + 1; repeat++) {
    const grads = Object.fromEntries(shapes.map((shape, i) => [names[i], tf.fill(shape, group.rank + 1)]));
    group.barrier();
    const started = performance.now();
    const synced = await allreduceGradients(group, grads, names);
    const elapsed = performance.now() - started;
    tf.dispose(Object.values(synced.grads));
    if (repeat > 0) {
      runnerTimes.push(elapsed);
      collectiveTimes.push(synced.allreduceSeconds * 1000);
    }
  }
  if (group.rank === 0) {
    const bytes = parameters * 4;
    console.log(JSON.stringify({ ranks: group.size, parameters, buckets: buckets.length, bytes, mpiMs: median(mpiTimes), runnerMs: median(runnerTimes), runnerCollectiveMs: median(collectiveTimes) }));
  }
  group.finalize();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
