import * as tf from '@tensorflow/tfjs-core';
import { processGroup, type Communicator } from '../distributed/communicator';
import { backendReadsSynchronously } from '../plugin-system/backend';
import { SegkitError } from '../errors';

/**
 * A backend kernel: inputs { x } float32 → x summed over every rank of the process group. The collective
 * runs inside the synchronous forward and backward passes, so it is a kernel of the host-memory backends
 * (cpu, native, tensorflow), which read their inputs in place like any of their kernels; it is
 * registered for the active backend on first use.
 */
export const ALLREDUCE_SUM_KERNEL = 'SegkitAllreduceSum';

function ensureAllreduceKernel(): void {
  const backendName = tf.getBackend();
  if (tf.getKernel(ALLREDUCE_SUM_KERNEL, backendName)) return;
  tf.registerKernel({
    kernelName: ALLREDUCE_SUM_KERNEL,
    backendName,
    kernelFunc: ({ inputs, backend: untyped }) => {
      const backend = untyped as tf.KernelBackend;
      const x = inputs.x as tf.TensorInfo;
      const values = Float32Array.from(backend.readSync(x.dataId) as Float32Array);
      processGroup().allreduce(values, 'sum');
      return { dataId: backend.write(values, x.shape, 'float32'), shape: x.shape, dtype: 'float32' };
    },
  });
}

function allreduceSum(x: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(ALLREDUCE_SUM_KERNEL, { x }) as tf.Tensor;
}

const AXES = [0, 1, 2];

/**
 * Mean and biased variance over N, H, W of the union of every rank's batch, and its element count.
 * Each rank contributes (count, mean, Σ(x − mean)²) in its own row of a [ranks, 2C+1] table that one
 * allreduce fills in; the rows are then combined (Chan et al.'s parallel variance) in rank order, the same
 * arithmetic on every rank, so every rank normalises with identical statistics.
 */
function globalMoments(x: tf.Tensor4D, group: Communicator): { mean: tf.Tensor1D; variance: tf.Tensor1D; total: tf.Tensor; count: number } {
  const [n, h, w, c] = x.shape;
  const localCount = n * h * w;
  const width = 2 * c + 1;
  const localMean = tf.mean(x, AXES);
  const localM2 = tf.sum(tf.square(tf.sub(x, localMean)), AXES);
  const row = tf.concat([tf.tensor1d([localCount]), localMean, localM2]);
  const table = tf.concat([tf.zeros([group.rank * width]), row, tf.zeros([(group.size - group.rank - 1) * width])]);
  const gathered = tf.reshape(allreduceSum(table), [group.size, width]);
  const counts = tf.slice(gathered, [0, 0], [group.size, 1]);
  const means = tf.slice(gathered, [0, 1], [group.size, c]);
  const m2s = tf.slice(gathered, [0, 1 + c], [group.size, c]);
  const total = tf.sum(counts);
  const mean = tf.div(tf.sum(tf.mul(counts, means), 0), total) as tf.Tensor1D;
  const spread = tf.sum(tf.mul(counts, tf.square(tf.sub(means, mean))), 0);
  const variance = tf.div(tf.add(tf.sum(m2s, 0), spread), total) as tf.Tensor1D;
  // `total` is exact whatever each rank's batch shape; the host-side count (for the running variance's
  // unbiased factor) assumes equal shapes, as fixed-size crops give, rather than reading a tensor back.
  return { mean, variance, total, count: localCount * group.size };
}

/**
 * MMCV's SyncBN in training mode over a process group of more than one rank: batch normalisation with
 * the statistics of the union of every rank's batch. The backward pass all-reduces Σdy and Σdy·(x − μ)
 * (PyTorch's SyncBatchNorm backward), so dx is the gradient of the sum of every rank's loss with
 * respect to this rank's x; dγ and dβ are this rank's share, which the data-parallel gradient
 * allreduce then combines like any other gradient. `onMoments` sees the global statistics and count
 * (for the running averages). Every rank must call it in the same order (it is collective).
 */
export function syncBatchNormWithBatchStats(
  x: tf.Tensor4D,
  weight: tf.Tensor1D | tf.Variable | null,
  bias: tf.Tensor1D | tf.Variable | null,
  eps: number,
  onMoments?: (mean: tf.Tensor1D, variance: tf.Tensor1D, count: number) => void,
  group: Communicator = processGroup(),
): tf.Tensor4D {
  if (!backendReadsSynchronously()) {
    throw new SegkitError(`norm_cfg: SyncBN over ${group.size} processes needs a backend with tensors in host memory (cpu, native, tensorflow), not '${tf.getBackend()}'`);
  }
  ensureAllreduceKernel();
  const params = [weight, bias].filter((p): p is tf.Tensor1D => p !== null);
  const normalize = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor4D;
    const scale = weight ? (args[1] as tf.Tensor1D) : undefined;
    const offset = bias ? (args[args.length - 1] as tf.Tensor1D) : undefined;
    const { mean, variance, count } = globalMoments(input, group);
    onMoments?.(mean, variance, count);
    const value = tf.batchNorm4d(input, mean, variance, offset, scale, eps);
    // As in batchNormWithBatchStats, only the input is saved; the backward pass recomputes the global
    // statistics (one more small allreduce, identical result) instead of keeping them alive.
    save([input]);
    const gradFunc = (dy: tf.Tensor4D, [savedInput]: tf.Tensor[]): tf.Tensor[] => {
      const xs = savedInput as tf.Tensor4D;
      const stats = globalMoments(xs, group);
      const invStd = tf.rsqrt(tf.add(stats.variance, eps));
      const centered = tf.sub(xs, stats.mean);
      const dOffset = tf.sum(dy, AXES);
      const dyCentered = tf.sum(tf.mul(dy, centered), AXES);
      const sums = allreduceSum(tf.concat([dOffset, dyCentered]));
      const c = xs.shape[3];
      const globalDOffset = tf.slice(sums, [0], [c]);
      const globalDyCentered = tf.slice(sums, [c], [c]);
      const centeredFactor = tf.mul(tf.square(invStd), tf.div(globalDyCentered, stats.total));
      const outFactor = scale ? tf.mul(scale, invStd) : invStd;
      const dx = tf.mul(tf.sub(tf.sub(dy, tf.div(globalDOffset, stats.total)), tf.mul(centered, centeredFactor)), outFactor);
      return [dx, ...(scale ? [tf.mul(dyCentered, invStd)] : []), ...(offset ? [dOffset] : [])];
    };
    return { value, gradFunc };
  });
  return tf.tidy('SyncBatchNorm2d', () => normalize(x, ...params) as tf.Tensor4D);
}
