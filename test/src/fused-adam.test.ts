import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ADAM_UPDATE_KERNEL, nn, type NamedParameter } from '@segkit/core';
import { createOptimizer } from '@segkit/optimizers';
import { seededValues } from './seeded-values';
import { loadAddon, registerNativeBackend, NATIVE_BACKEND_NAME } from '@segkit/backend-cpu-native';

/** Deterministic values in [-1, 1). */
/**
 * Four steps of @segkit/optimizers' Adam/AdamW on `backend`, two param groups (the second with its own
 * lr and no weight decay; its last parameter gets no gradient on step 2, so step counts differ):
 * the parameters and every optimizer slot afterwards.
 */
function runAdam(backend: string, options: Record<string, unknown>): Float32Array[] {
  const previous = tf.getBackend();
  tf.setBackend(backend);
  try {
    const shapes = [[3, 5], [7], [2, 2, 3]];
    const params: NamedParameter[] = shapes.map((shape, i) => ({
      name: `p${i}`,
      variable: tf.tidy(() => tf.variable(tf.tensor(seededValues(i + 1, tf.util.sizeFromShape(shape)), shape), true, `fused_adam_${backend}_${i}`)),
    }));
    const optimizer = createOptimizer(options as { type: string }, [{ params: params.slice(0, 2) }, { params: params.slice(2), lr: 0.02, weight_decay: 0 }]);
    for (let step = 0; step < 4; step++) {
      const stepping = params.filter((_, i) => !(step === 1 && i === 2));
      const grads = Object.fromEntries(stepping.map((p, i) => [p.variable.name, tf.tensor(seededValues(100 * step + i + 7, p.variable.size), p.variable.shape)]));
      optimizer.step(grads);
      tf.dispose(Object.values(grads));
    }
    const state = optimizer.stateDict();
    const slots = Object.values(state.slots).flatMap((entry) => Object.values(entry));
    const result = [...params.map((p) => p.variable.dataSync() as Float32Array), ...slots.map((t) => Float32Array.from(t.dataSync()))].map((v) => Float32Array.from(v));
    tf.dispose(slots);
    optimizer.dispose();
    params.forEach((p) => p.variable.dispose());
    return result;
  } finally {
    tf.setBackend(previous);
  }
}

describe('Adam/AdamW on the native backend (one fused kernel per parameter) equal Adam/AdamW on cpu (element-wise ops)', function () {
  this.timeout(20000);
  before(function () {
    nn.ensureGradientsRegistered();
    const addon = loadAddon();
    if (!addon.addon) this.skip(); // the addon could not be built here: the native backend does not exist
    registerNativeBackend(addon.addon!);
  });

  it('native has the kernel and cpu does not, so the two runs take different paths', () => {
    expect(tf.getKernel(ADAM_UPDATE_KERNEL, NATIVE_BACKEND_NAME)).to.not.equal(undefined);
    expect(tf.getKernel(ADAM_UPDATE_KERNEL, 'cpu')).to.equal(undefined);
  });

  it('one step by hand: Adam with L2 weight decay, first step (m = 0.1g, v = 0.001g², update = lr·sign-ish)', () => {
    const previous = tf.getBackend();
    tf.setBackend(NATIVE_BACKEND_NAME);
    try {
      const variable = tf.tidy(() => tf.variable(tf.tensor1d([1, -2]), true, 'fused_adam_by_hand'));
      const optimizer = createOptimizer({ type: 'Adam', lr: 0.1, weight_decay: 0.5 }, [{ params: [{ name: 'w', variable }] }]);
      const grad = tf.tensor1d([0.5, 3]);
      optimizer.step({ [variable.name]: grad });
      // g' = g + 0.5·p = [1, 2]; m̂ = g', v̂ = g'² → p − 0.1·g'/(|g'| + 1e-8) = [0.9, −2.1]
      const [a, b] = Array.from(variable.dataSync());
      expect(a).to.be.closeTo(0.9, 1e-6);
      expect(b).to.be.closeTo(-2.1, 1e-6);
      tf.dispose([grad, variable]);
      optimizer.dispose();
    } finally {
      tf.setBackend(previous);
    }
  });

  const cases: Record<string, Record<string, unknown>> = {
    'Adam defaults': { type: 'Adam', lr: 0.01 },
    'Adam with L2 weight decay and other betas': { type: 'Adam', lr: 0.005, betas: [0.8, 0.99], eps: 1e-6, weight_decay: 0.01 },
    'AdamW (decoupled decay 0.01)': { type: 'AdamW', lr: 0.01 },
    'AdamW with amsgrad': { type: 'AdamW', lr: 0.003, weight_decay: 0.05, amsgrad: true },
    'Adam with amsgrad': { type: 'Adam', lr: 0.01, amsgrad: true, weight_decay: 0.001 },
  };
  for (const [label, options] of Object.entries(cases)) {
    it(label, () => {
      const before = tf.memory().numTensors;
      const native = runAdam(NATIVE_BACKEND_NAME, options);
      const cpu = runAdam('cpu', options);
      // three parameters + per parameter exp_avg, exp_avg_sq, (max_exp_avg_sq,) step
      expect(native.length).to.equal(3 + 3 * (options.amsgrad ? 4 : 3));
      expect(native.length).to.equal(cpu.length);
      expect(native[0]!.filter((v, j) => Math.abs(v - seededValues(1, 15)[j]!) > 1e-3).length).to.be.greaterThan(10); // the parameters moved
      native.forEach((actual, i) => actual.forEach((v, j) => expect(v, `${label}: tensor ${i} [${j}]`).to.be.closeTo(cpu[i]![j]!, 1e-6 * Math.max(1, Math.abs(cpu[i]![j]!)))));
      expect(tf.memory().numTensors).to.equal(before);
    });
  }
});
