import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { nn, SegkitError } from '../src';
import { expectClose, expectNoLeak } from './nn-helpers';

describe('nn.ConvModule and state dicts', () => {
  it('uses MMCV child names and drops the conv bias when a norm follows (bias auto)', () => {
    const withBn = new nn.ConvModule(3, 4, 3, { padding: 1, norm_cfg: { type: 'SyncBN', requires_grad: true } });
    expect(withBn.namedChildren().map(([name]) => name)).to.deep.equal(['conv', 'bn', 'activate']);
    expect(withBn.namedParameters().map(([name]) => name)).to.deep.equal(['conv.weight', 'bn.weight', 'bn.bias']);
    expect([...withBn.stateDict().keys()]).to.deep.equal(['conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked']);
    const withGn = new nn.ConvModule(4, 4, 1, { norm_cfg: { type: 'GN', num_groups: 2 }, act_cfg: null });
    expect(withGn.namedChildren().map(([name]) => name)).to.deep.equal(['conv', 'gn']);
    const plain = new nn.ConvModule(4, 2, 1);
    expect(plain.namedParameters().map(([name]) => name)).to.deep.equal(['conv.weight', 'conv.bias']);
    expect(Array.from(plain.conv.bias!.dataSync())).to.deep.equal([0, 0]);
    expect(() => new nn.ConvModule(4, 2, 1, { norm_cfg: { type: 'FancyNorm' }, path: 'model.decode_head' })).to.throw(SegkitError, "model.decode_head.norm_cfg.type: unknown norm layer type 'FancyNorm'");
    for (const module of [withBn, withGn, plain]) module.dispose();
  });

  it('initialises the conv as MMCV does (Kaiming normal, fan_out)', () => {
    const module = new nn.ConvModule(16, 64, 3, { norm_cfg: { type: 'BN' } });
    const values = Array.from(module.conv.weight.dataSync());
    const std = Math.sqrt(values.reduce((sum, v) => sum + v * v, 0) / values.length);
    expect(std).to.be.closeTo(Math.sqrt(2 / (64 * 9)), 0.005);
    module.dispose();
  });

  it('forward = conv → norm → ReLU (non-negative), with the right shape', () => {
    const module = new nn.ConvModule(3, 4, 3, { padding: 1, stride: 2, norm_cfg: { type: 'BN' } });
    const y = module.forward(tf.randomNormal([2, 6, 6, 3]) as tf.Tensor4D);
    expect(y.shape).to.deep.equal([2, 3, 3, 4]);
    expect(Math.min(...y.dataSync())).to.be.at.least(0);
    module.dispose();
  });

  it('stateDict round trip into a fresh module restores every parameter and buffer', () => {
    const source = new nn.Sequential(new nn.ConvModule(2, 3, 3, { padding: 1, norm_cfg: { type: 'BN' } }), new nn.Conv2d(3, 2, 1));
    source.forward(tf.randomNormal([2, 4, 4, 2]) as tf.Tensor4D); // moves the running stats away from their defaults
    const target = new nn.Sequential(new nn.ConvModule(2, 3, 3, { padding: 1, norm_cfg: { type: 'BN' } }), new nn.Conv2d(3, 2, 1));
    target.loadStateDict(source.stateDict());
    const targetState = target.stateDict();
    for (const [key, variable] of source.stateDict()) {
      expect(Array.from(targetState.get(key)!.dataSync()), key).to.deep.equal(Array.from(variable.dataSync()));
    }
    expect([...targetState.keys()]).to.include('0.bn.num_batches_tracked');
    source.dispose();
    target.dispose();
  });

  it('loadStateDict names missing, unexpected and mismatched keys', () => {
    const module = new nn.ConvModule(2, 3, 1, { norm_cfg: { type: 'BN' } });
    const state = new Map<string, tf.Tensor>(module.stateDict());
    const withoutBias = new Map(state);
    withoutBias.delete('bn.bias');
    expect(() => module.loadStateDict(withoutBias, { source: 'ckpt.json' })).to.throw(SegkitError, 'ckpt.json: cannot load state dict: missing keys: bn.bias');
    const extra = new Map(state).set('bn.extra', tf.zeros([3]));
    expect(() => module.loadStateDict(extra)).to.throw(SegkitError, 'unexpected keys: bn.extra');
    const wrongShape = new Map(state).set('conv.weight', tf.zeros([1, 1, 3, 2]));
    expect(() => module.loadStateDict(wrongShape)).to.throw(SegkitError, 'shape mismatch for conv.weight (checkpoint [1,1,3,2], model [1,1,2,3])');
    expect(module.loadStateDict(withoutBias, { strict: false }).missingKeys).to.deep.equal(['bn.bias']);
    module.dispose();
  });

  it('a training step through ConvModule, pooling and dropout leaves no tensor behind', () => {
    const model = new nn.Sequential(
      new nn.ConvModule(3, 4, 3, { padding: 2, dilation: 2, norm_cfg: { type: 'BN' } }),
      new nn.MaxPool2d(2),
      new nn.Dropout2d(0.1),
      new nn.AdaptiveAvgPool2d(3),
      new nn.ConvModule(4, 2, 1, { norm_cfg: { type: 'GN', num_groups: 2 } }),
    );
    const x = tf.randomNormal([2, 8, 8, 3]) as tf.Tensor4D;
    expectNoLeak(() => {
      const { value, grads } = tf.variableGrads(() => tf.mean(model.forward(x)));
      expect(Object.keys(grads)).to.have.length(model.trainableParameters().length);
      value.dispose();
      tf.dispose(grads);
      tf.tidy(() => {
        model.eval().forward(x);
      });
    });
    x.dispose();
    model.dispose();
  });

  it('residualActivation: ReLU(x + residual) with tf.relu(tf.add)\'s values and gradients, keeping only its output for the backward pass', () => {
    const x = tf.tensor4d([1, -2, 0.5, -0.5, 3, -3, 0, 2], [1, 2, 2, 2]);
    const residual = tf.tensor4d([-2, 1, 0.5, 0.25, -1, 4, 0, -2], [1, 2, 2, 2]);
    const upstream = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    const relu = new nn.ReLU();
    expectNoLeak(() => {
      const fused = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.mul(nn.residualActivation(relu, a as tf.Tensor4D, b as tf.Tensor4D), upstream));
      const [da, db] = fused([x, residual]);
      // sum = [-1, -1, 1, -0.25, 2, 1, 0, 0]: the gradient is upstream where the sum is > 0 (ReLU'(0) = 0, as tf.relu).
      expectClose(da!, [0, 0, 3, 0, 5, 6, 0, 0]);
      expectClose(db!, [0, 0, 3, 0, 5, 6, 0, 0]);
      const value = nn.residualActivation(relu, x, residual);
      expectClose(value, [0, 0, 1, 0, 2, 1, 0, 0]);
      tf.dispose([da!, db!, value]);
    });
    // What the tape keeps for the backward pass: one output-sized tensor, against Add's two inputs and Relu's sum.
    const savedElements = (f: () => tf.Tensor) => {
      let saved = 0;
      const { value, grads } = tf.variableGrads(() => {
        const out = f();
        for (const node of (tf.engine() as unknown as { state: { activeTape: { saved?: tf.Tensor[] }[] } }).state.activeTape) for (const t of node.saved ?? []) saved += t.size;
        return tf.sum(out) as tf.Scalar;
      }, [variable]);
      tf.dispose([value, ...Object.values(grads)]);
      return saved;
    };
    const variable = tf.variable(x, true, 'residual_activation_x');
    expect(savedElements(() => nn.residualActivation(relu, variable as tf.Variable<tf.Rank.R4>, residual))).to.equal(8);
    expect(savedElements(() => tf.relu(tf.add(variable, residual)))).to.equal(24);
    tf.dispose([x, residual, upstream, variable]);
  });
});
