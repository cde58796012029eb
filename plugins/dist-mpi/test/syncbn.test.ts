import * as path from 'path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { nn, setProcessGroup } from '@segkit/core';
import { mpiUnavailable, run } from './mpi-harness';

describe('@segkit/dist-mpi: SyncBN', function () {
  this.timeout(300000);

  it('over 2 ranks equals BatchNorm over the union batch: output, dx, dγ, dβ and running statistics', function () {
    const unavailable = mpiUnavailable();
    if (unavailable) {
      console.warn(`    skipped: ${unavailable}`);
      this.skip();
    }
    const result = run(2, [path.join(__dirname, 'syncbn-worker.js')]);
    expect(result.code, result.stderr).to.equal(0);
    const reports = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, number>);
    expect(reports.map((r) => r.rank).sort()).to.deep.equal([0, 1]);
    for (const report of reports) {
      expect(report.size).to.equal(2);
      // Inputs of scale up to 14 with channel means up to 10: float32 differences of the order of 1e-6.
      for (const key of ['y', 'dx', 'dGamma', 'dBeta', 'runningMean', 'runningVar']) expect(report[key], `rank ${report.rank} ${key}`).to.be.at.most(1e-5);
      expect(report.dxScale).to.be.greaterThan(0.1);
      expect(report.leaked, 'tensors left behind').to.equal(0);
    }
  });

  it('in one process is BatchNorm2d (same output, gradients and running statistics)', () => {
    setProcessGroup(undefined);
    const before = tf.memory().numTensors;
    const x = tf.tensor4d(Array.from({ length: 2 * 3 * 3 * 2 }, (_, i) => Math.sin(i) * 3 + (i % 2)), [2, 3, 3, 2]);
    const results = [new nn.BatchNorm2d(2), new nn.SyncBatchNorm2d(2)].map((layer) => {
      const [y, dx] = [tf.tidy(() => layer.forward(x)), tf.grad((input: tf.Tensor) => tf.sum(tf.square(layer.forward(input as tf.Tensor4D))))(x)];
      const values = [y, dx, layer.runningMean!, layer.runningVar!].map((t) => Array.from(t.dataSync()));
      tf.dispose([y, dx]);
      layer.dispose();
      return values;
    });
    expect(results[1]).to.deep.equal(results[0]);
    x.dispose();
    expect(tf.memory().numTensors).to.equal(before);
  });
});
