import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { leanVariableGrads, parseLossTensors, type EncoderDecoder, type Kernel } from '../src';
import { TOY_MODEL, toyKernel } from '../src/testing';
import { expectNoLeak } from './nn-helpers';

/** Element-wise equal (the same kernels run in the same order, so the values are identical). */
function expectSameGrads(actual: tf.NamedTensorMap, expected: tf.NamedTensorMap): void {
  expect(Object.keys(actual).sort()).to.deep.equal(Object.keys(expected).sort());
  for (const [name, grad] of Object.entries(expected)) {
    expect(Array.from(actual[name]!.dataSync()), name).to.deep.equal(Array.from(grad.dataSync()));
  }
}

describe('leanVariableGrads: tf.variableGrads with tensors freed during the backward pass', () => {
  let kernel: Kernel;
  before(async () => {
    kernel = await toyKernel();
  });

  it('gives tf.variableGrads\'s value and gradients for a segmentor (BN in train mode, two heads) and leaves no tensor behind', () => {
    // No dropout: the two passes must see the same function.
    const config = { ...TOY_MODEL, decode_head: { ...TOY_MODEL.decode_head, dropout_ratio: 0 }, auxiliary_head: { ...TOY_MODEL.auxiliary_head, dropout_ratio: 0 } };
    const model = (kernel.build('segmentors', config, { path: 'model' }) as EncoderDecoder).train();
    const trainable = model.parameters().filter((variable) => variable.trainable);
    const images = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const labels = tf.tensor3d(Array.from({ length: 128 }, (_, i) => (i % 7 === 0 ? 255 : i % 3)), [2, 8, 8], 'int32');
    const loss = () => parseLossTensors(model.forwardTrain(images, labels)).loss;
    // BN's running statistics move on each forward: compare from the same state.
    // (Copies, not clones: a clone sharing the buffer's data would trip tfjs's kernel leak check on assign.)
    const buffers = model.namedBuffers().map(([, buffer]) => [buffer, tf.tensor(buffer.dataSync(), buffer.shape, buffer.dtype)] as const);
    const reference = tf.variableGrads(loss, trainable);
    // (Each copy is disposed once assigned, so the buffer owns its data alone, as before.)
    for (const [buffer, initial] of buffers) {
      buffer.assign(initial);
      initial.dispose();
    }
    expectNoLeak(() => {
      const lean = leanVariableGrads(loss, trainable);
      expect(lean.value.dataSync()[0]).to.equal(reference.value.dataSync()[0]);
      expectSameGrads(lean.grads, reference.grads);
      tf.dispose([lean.value, ...Object.values(lean.grads)]);
    });
    tf.dispose([reference.value, ...Object.values(reference.grads), images, labels]);
    model.dispose();
  });

  it('handles shared inputs, identity gradients, custom gradients and frozen variables; holds fewer tensors at the peak', () => {
    const w = tf.variable(tf.tensor2d([[0.5, -1], [2, 0.25]]), true, 'lean_w');
    const b = tf.variable(tf.tensor1d([0.1, -0.2]), true, 'lean_b');
    const frozen = tf.variable(tf.tensor1d([3, 4]), false, 'lean_frozen');
    const x = tf.tensor2d([[1, 2], [3, -4], [0.5, 1]]);
    const square = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const save = args.pop() as tf.GradSaveFunc;
      const t = args[0] as tf.Tensor;
      save([t]);
      return { value: tf.square(t), gradFunc: (dy, saved) => tf.mul(dy as tf.Tensor, tf.mul(saved[0]!, 2)) };
    });
    // The first op's backward runs last: the tensors alive then are what the backward pass still holds.
    let heldAtEnd = 0;
    const probe = tf.customGrad((t) => ({ value: tf.clone(t as tf.Tensor), gradFunc: (dy) => {
      heldAtEnd = tf.memory().numTensors - before;
      return tf.clone(dy as tf.Tensor);
    } }));
    let [peak, before] = [0, 0];
    const f = () => {
      const h = tf.add(probe(tf.matMul(x, w)) as tf.Tensor2D, b); // h feeds three consumers: its gradient is accumulated
      const r = tf.relu(h);
      const s = tf.add(tf.add(r, h), tf.reshape(tf.clone(h), [3, 2]));
      const layers = [s];
      for (let i = 0; i < 6; i++) layers.push(tf.tanh(tf.mul(tf.add(layers[i]!, b), frozen)));
      return tf.sum(square(tf.mul(layers[6]!, tf.sum(w))) as tf.Tensor) as tf.Scalar;
    };
    const track = (fn: () => tf.Scalar) => () => {
      const value = fn();
      peak = tf.memory().numTensors - before;
      return value;
    };
    before = tf.memory().numTensors;
    const reference = tf.variableGrads(track(f), [w, b, frozen]);
    const [referencePeak, referenceHeld] = [peak, heldAtEnd];
    // As in a fresh process, where no gradient has run yet: the engine has no tape field until the first one.
    delete (tf.engine() as unknown as { state: { activeTape?: unknown } }).state.activeTape;
    expectNoLeak(() => {
      before = tf.memory().numTensors;
      const lean = leanVariableGrads(track(f), [w, b, frozen]);
      expect(lean.value.dataSync()[0]).to.equal(reference.value.dataSync()[0]);
      expectSameGrads(lean.grads, Object.fromEntries(Object.entries(reference.grads).filter(([, g]) => g != null)) as tf.NamedTensorMap);
      tf.dispose([lean.value, ...Object.values(lean.grads)]);
    });
    expect(peak).to.equal(referencePeak); // the forward pass is tfjs's own
    // tfjs still holds ~60 saved tensors and intermediate gradients there; the lean pass a handful.
    expect(heldAtEnd, `lean ${heldAtEnd}, tfjs ${referenceHeld}`).to.be.below(referenceHeld - 40);
    tf.dispose([reference.value, ...Object.values(reference.grads).filter((g): g is tf.Tensor => g != null), w, b, frozen, x]);
  });

  it('inside another gradient computation it is tf.variableGrads (higher-order gradients need the whole tape)', () => {
    const v = tf.variable(tf.scalar(3), true, 'lean_v');
    expectNoLeak(() => {
      // d/da of (d/dv (a·v²)) = d/da (2·a·v) = 2·v = 6
      const outer = tf.grad((a: tf.Tensor) => {
        const { value, grads } = leanVariableGrads(() => tf.mul(a, tf.square(v)) as tf.Scalar, [v]);
        value.dispose();
        return grads.lean_v!;
      });
      const a = tf.scalar(2);
      const g = outer(a);
      expect(g.dataSync()[0]).to.be.closeTo(6, 1e-6);
      tf.dispose([a, g]);
    });
    v.dispose();
  });
});
