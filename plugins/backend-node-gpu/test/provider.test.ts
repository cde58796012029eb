import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { isSegkitPlugin } from '@segkit/core';
import { plugin, tfjsNodeGpuBackendProvider } from '../src';

describe('@segkit/backend-node-gpu', () => {
  it("is a plugin offering backend 'tensorflow-gpu' at priority 300", () => {
    expect(isSegkitPlugin(plugin)).to.equal(true);
    expect(tfjsNodeGpuBackendProvider).to.include({ name: 'tensorflow-gpu', priority: 300, packageName: '@segkit/backend-node-gpu' });
  });

  it('reports, without throwing, that @tensorflow/tfjs-node-gpu is not installed', async () => {
    const tensorsBefore = tf.memory().numTensors;
    const reason = await tfjsNodeGpuBackendProvider.load();
    expect(reason).to.match(/@tensorflow\/tfjs-node-gpu is not installed/);
    expect(reason).to.not.include('\n');
    expect(tf.findBackendFactory('tensorflow-gpu')).to.equal(null);
    expect(tf.memory().numTensors).to.equal(tensorsBefore);
  });
});
