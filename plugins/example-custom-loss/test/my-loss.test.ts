import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createKernel, loadConfig } from '@segkit/core';

const quiet = { info: () => undefined, warn: () => undefined };

describe('example-custom-loss: a user plugin loaded from a config', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-myloss-'));
    // A config that names the plugin by path, relative to the config file.
    fs.writeFileSync(
      path.join(dir, 'cfg.json'),
      JSON.stringify({ plugins: [path.relative(dir, path.join(__dirname, '..', 'src', 'index.js')).replace(/^(?!\.)/, './')], loss: { type: 'MyLoss', loss_weight: 2 } }),
    );
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('builds MyLoss through the losses registry and computes the hand value', async () => {
    const config = await loadConfig(path.join(dir, 'cfg.json'));
    const kernel = await createKernel({ plugins: config.plugins as string[], configDir: dir, backend: 'cpu', logger: quiet });
    expect(kernel.registries.losses.list()).to.deep.equal(['MyLoss']);
    // Core depends on no plugin: only what the config lists is registered.
    expect(kernel.registries.heads.list()).to.deep.equal([]);
    const before = tf.memory().numTensors;
    const loss = kernel.build('losses', config.loss, { path: 'loss' });
    // Two pixels, 2 classes, equal logits: softmax = [0.5, 0.5]; |p - onehot| = 0.5 for both classes.
    // The second pixel is ignored. Mean over the one valid pixel = 0.5, times loss_weight 2 = 1.0.
    const logits = tf.zeros([1, 1, 2, 2]);
    const labels = tf.tensor3d([[[1, 255]]], [1, 1, 2], 'int32');
    const value = loss.forward(logits, labels, { ignoreIndex: 255 });
    expect(value.dataSync()[0]).to.be.closeTo(1.0, 1e-6);
    expect(loss.lossName).to.equal('loss_my');
    tf.dispose([logits, labels, value]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('rejects an unknown option with the nearest valid name', async () => {
    const kernel = await createKernel({ plugins: [require('../src/index').plugin], backend: 'cpu', logger: quiet });
    expect(() => kernel.build('losses', { type: 'MyLoss', loss_wieght: 1 }, { path: 'model.decode_head.loss_decode.1' })).to.throw(
      "model.decode_head.loss_decode.1.loss_wieght: unknown option of MyLoss (did you mean 'loss_weight'?)",
    );
  });
});
