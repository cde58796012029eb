// Run by syncbn.test.ts under `mpirun -np 2`: SyncBN over the ranks' halves of a batch against BatchNorm
// over the whole batch (which every rank computes itself). Prints one JSON line per rank with the largest
// differences, and the tensors left behind.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { nn, setProcessGroup } from '@segkit/core';
import { initMpi } from '../src';

const SHAPE: [number, number, number, number] = [4, 5, 6, 3];
/** Per-channel offsets and scales far from (0, 1), so that a one-pass E[x²] − E[x]² variance would show. */
const CHANNEL_MEAN = [3, -2, 10];
const CHANNEL_SCALE = [1, 0.5, 4];
const GAMMA = [1.5, 0.5, 2];
const BETA = [0.1, -0.2, 0.3];

function fixture(seed: number): Float32Array {
  const values = new Float32Array(SHAPE.reduce((a, b) => a * b));
  for (let i = 0; i < values.length; i++) {
    const c = i % 3;
    values[i] = CHANNEL_MEAN[c]! + CHANNEL_SCALE[c]! * Math.sin(seed * 0.7 + i * 1.37 + Math.cos(i * 0.11));
  }
  return values;
}

/** Largest difference relative to the reference's magnitude (at least 1): float32 sums of 120 terms of order 10 differ by ~1e-4 absolute. */
function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return worst;
}

/** Output, dx, dγ, dβ and the running statistics of one training-mode forward and backward of `layer` on x with loss Σ y·w. */
async function forwardBackward(layer: nn.BatchNorm2d, x: tf.Tensor4D, w: tf.Tensor4D) {
  tf.tidy(() => {
    layer.weight!.assign(tf.tensor1d(GAMMA));
    layer.bias!.assign(tf.tensor1d(BETA));
  });
  const input = tf.variable(x, true);
  let output: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const y = layer.forward(input as tf.Tensor4D);
    output = tf.keep(y.clone());
    return tf.sum(tf.mul(y, w));
  }, [input, layer.weight!, layer.bias!]);
  const read = async (t: tf.Tensor) => Float32Array.from((await t.data()) as Float32Array);
  const result = {
    y: await read(output!),
    dx: await read(grads[input.name]!),
    dGamma: await read(grads[layer.weight!.name]!),
    dBeta: await read(grads[layer.bias!.name]!),
    runningMean: await read(layer.runningMean!),
    runningVar: await read(layer.runningVar!),
  };
  tf.dispose([value, output!, input, ...Object.values(grads)]);
  return result;
}

async function main(): Promise<void> {
  tf.env().set('IS_TEST', true);
  await tf.setBackend('cpu');
  const group = initMpi('mpi');
  const before = tf.memory().numTensors;
  const x = tf.tensor4d(fixture(1), SHAPE);
  const w = tf.tensor4d(fixture(2), SHAPE);

  // Reference: BatchNorm over the union batch, in this process.
  setProcessGroup(undefined);
  const reference = new nn.BatchNorm2d(3);
  const full = await forwardBackward(reference, x, w);

  // SyncBN over the ranks: this rank's rows of the batch.
  setProcessGroup(group);
  const per = SHAPE[0] / group.size;
  const xs = tf.slice(x, [group.rank * per, 0, 0, 0], [per, -1, -1, -1]);
  const ws = tf.slice(w, [group.rank * per, 0, 0, 0], [per, -1, -1, -1]);
  const synced = new nn.SyncBatchNorm2d(3);
  const mine = await forwardBackward(synced, xs, ws);
  // dγ and dβ are this rank's share; summed over the ranks they are the union's.
  group.allreduce(mine.dGamma, 'sum');
  group.allreduce(mine.dBeta, 'sum');

  const rowSize = mine.y.length;
  const rows = (values: Float32Array) => values.subarray(group.rank * rowSize, (group.rank + 1) * rowSize);
  tf.dispose([x, w, xs, ws]);
  reference.dispose();
  synced.dispose();
  console.log(
    JSON.stringify({
      rank: group.rank,
      size: group.size,
      y: maxDifference(mine.y, rows(full.y)),
      dx: maxDifference(mine.dx, rows(full.dx)),
      dGamma: maxDifference(mine.dGamma, full.dGamma),
      dBeta: maxDifference(mine.dBeta, full.dBeta),
      runningMean: maxDifference(mine.runningMean, full.runningMean),
      runningVar: maxDifference(mine.runningVar, full.runningVar),
      // The reference values, so the test can check they are not trivially zero.
      dxScale: Math.max(...Array.from(full.dx, Math.abs)),
      leaked: tf.memory().numTensors - before,
    }),
  );
  group.finalize();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
