import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { SGD_UPDATE_KERNEL, nn, type NamedParameter } from '@segkit/core';
import { createOptimizer } from '@segkit/optimizers';
import { seededValues } from './seeded-values';
import { loadAddon, registerNativeBackend, NATIVE_BACKEND_NAME } from '@segkit/backend-cpu-native';

/** Deterministic values in [-1, 1). */
/**
 * Three steps of @segkit/optimizers' SGD on `backend`, two param groups (one without weight decay),
 * fixed gradients per step: the parameters and momentum buffers afterwards.
 */
function runSgd(backend: string, options: Record<string, unknown>): Float32Array[] {
  const previous = tf.getBackend();
  tf.setBackend(backend);
  try {
    const shapes = [[3, 5], [7], [2, 2, 3]];
    const params: NamedParameter[] = shapes.map((shape, i) => ({
      name: `p${i}`,
      variable: tf.tidy(() => tf.variable(tf.tensor(seededValues(i + 1, tf.util.sizeFromShape(shape)), shape), true, `fused_sgd_${backend}_${i}`)),
    }));
    const optimizer = createOptimizer({ type: 'SGD', ...options }, [{ params: params.slice(0, 2) }, { params: params.slice(2), lr: 0.1, weight_decay: 0 }]);
    for (let step = 0; step < 3; step++) {
      // keyed by variable name, as tf.variableGrads returns them
      const grads = Object.fromEntries(params.map((p, i) => [p.variable.name, tf.tensor(seededValues(100 * step + i + 7, p.variable.size), p.variable.shape)]));
      optimizer.step(grads);
      tf.dispose(Object.values(grads));
    }
    const state = optimizer.stateDict();
    const buffers = Object.values(state.slots).flatMap((slots) => Object.values(slots));
    const result = [...params.map((p) => p.variable.dataSync() as Float32Array), ...buffers.map((b) => b.dataSync() as Float32Array)].map((v) => Float32Array.from(v));
    tf.dispose(buffers);
    optimizer.dispose();
    params.forEach((p) => p.variable.dispose());
    return result;
  } finally {
    tf.setBackend(previous);
  }
}

describe('SGD on the native backend (one fused kernel per parameter) equals SGD on cpu (element-wise ops)', function () {
  this.timeout(20000);
  before(function () {
    nn.ensureGradientsRegistered();
    const addon = loadAddon();
    if (!addon.addon) this.skip(); // the addon could not be built here: the native backend does not exist
    registerNativeBackend(addon.addon!);
  });

  it('native has the kernel and cpu does not, so the two runs take different paths', () => {
    expect(tf.getKernel(SGD_UPDATE_KERNEL, NATIVE_BACKEND_NAME)).to.not.equal(undefined);
    expect(tf.getKernel(SGD_UPDATE_KERNEL, 'cpu')).to.equal(undefined);
  });

  const cases: Record<string, Record<string, unknown>> = {
    'plain (no momentum, no decay)': { lr: 0.01 },
    'weight decay only': { lr: 0.01, weight_decay: 0.0005 },
    'momentum 0.9 + weight decay (MMSegmentation schedules)': { lr: 0.01, momentum: 0.9, weight_decay: 0.0005 },
    'momentum with dampening': { lr: 0.05, momentum: 0.8, dampening: 0.3, weight_decay: 0.01 },
    nesterov: { lr: 0.02, momentum: 0.9, nesterov: true, weight_decay: 0.001 },
  };
  it('a tensor sharing the parameter\'s data (a clone) keeps its values: the in-place step only runs on unshared data', () => {
    const previous = tf.getBackend();
    tf.setBackend(NATIVE_BACKEND_NAME);
    try {
      const variable = tf.tidy(() => tf.variable(tf.tensor1d([1, 2, 3]), true, 'fused_sgd_shared'));
      const optimizer = createOptimizer({ type: 'SGD', lr: 0.5, momentum: 0.9 }, [{ params: [{ name: 'w', variable }] }]);
      const grad = tf.tensor1d([1, 1, 1]);
      optimizer.step({ [variable.name]: grad }); // unshared: in place
      expect(Array.from(variable.dataSync())).to.deep.equal([0.5, 1.5, 2.5]);
      const snapshot = tf.clone(variable);
      optimizer.step({ [variable.name]: grad }); // shared with the clone: fresh arrays
      expect(Array.from(snapshot.dataSync())).to.deep.equal([0.5, 1.5, 2.5]);
      expect(Array.from(variable.dataSync())).to.deep.equal([-0.45, 0.55, 1.55].map(Math.fround)); // buf = 0.9 + 1 = 1.9
      tf.dispose([snapshot, grad, variable]);
      optimizer.dispose();
    } finally {
      tf.setBackend(previous);
    }
  });

  for (const [label, options] of Object.entries(cases)) {
    it(label, () => {
      const before = tf.memory().numTensors;
      const native = runSgd(NATIVE_BACKEND_NAME, options);
      const cpu = runSgd('cpu', options);
      expect(native.length).to.equal(cpu.length);
      // the parameters moved: a step of at least lr·|g| for most elements
      expect(native[0]!.filter((v, j) => Math.abs(v - seededValues(1, 15)[j]!) > 1e-4).length).to.be.greaterThan(10);
      expect(native.length).to.equal(options.momentum ? 6 : 3); // three parameters (+ three momentum buffers)
      native.forEach((actual, i) => actual.forEach((v, j) => expect(v, `${label}: tensor ${i} [${j}]`).to.be.closeTo(cpu[i]![j]!, 1e-6 * Math.max(1, Math.abs(cpu[i]![j]!)))));
      expect(tf.memory().numTensors).to.equal(before);
    });
  }
});
