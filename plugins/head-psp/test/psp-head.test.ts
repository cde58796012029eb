import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createKernel, definePlugin, SegkitError, z, type Kernel, type Loss } from '@segkit/core';
import { plugin, type PSPHead } from '../src';

/** Stands in for @segkit/loss-cross-entropy: these tests only build and run the head. */
const stubLoss = definePlugin({
  name: 'stub-loss',
  version: '0.0.0',
  components: { losses: [{ type: 'CrossEntropyLoss', schema: z.object({ use_sigmoid: z.boolean().optional(), loss_weight: z.number().optional() }), create: (): Loss => ({ lossName: 'loss_ce', usesPixelWeight: true, forward: (logits) => tf.mean(logits) }) }] },
});

describe('PSPHead', () => {
  let kernel: Kernel;
  before(async () => {
    kernel = await createKernel({ plugins: [plugin, stubLoss], backend: 'cpu', logger: { info() {}, warn() {} } });
  });
  const build = (cfg: Record<string, unknown> = {}) =>
    (kernel.build('heads', { type: 'PSPHead', in_channels: 8, in_index: 3, channels: 4, num_classes: 5, norm_cfg: { type: 'SyncBN', requires_grad: true }, ...cfg }, { path: 'model.decode_head' }) as PSPHead);
  const features = (n = 2, size = 12) => [8, 8, 8, 8].map(() => tf.randomNormal([n, size, size, 8]));

  it('outputs logits at the feature size from the in_index feature', () => {
    const head = build();
    const inputs = features();
    const logits = head.forward(inputs);
    expect(logits.shape).to.deep.equal([2, 12, 12, 5]);
    const ppm = tf.tidy(() => head.pspModules.forward(inputs[3] as tf.Tensor4D).map((branch) => branch.shape));
    expect(ppm).to.deep.equal([[2, 12, 12, 4], [2, 12, 12, 4], [2, 12, 12, 4], [2, 12, 12, 4]]);
    tf.dispose([...inputs, logits]);
    head.dispose();
  });

  it('a PPM branch of scale 1 is the same value at every pixel (global pooling, upsampled)', () => {
    const head = build().eval();
    const x = tf.randomNormal([1, 7, 5, 8]) as tf.Tensor4D;
    const branch = head.pspModules.forward(x)[0]!;
    const values = branch.arraySync() as number[][][][];
    const first = values[0]![0]![0]!;
    for (const row of values[0]!) for (const pixel of row) pixel.forEach((v, c) => expect(v).to.be.closeTo(first[c]!, 1e-5));
    head.dispose();
  });

  it('parameter names: conv_seg first, then psp_modules.{i}.1 and bottleneck (17 tensors)', () => {
    const head = build();
    const names = head.namedParameters().map(([name]) => name);
    expect(names).to.deep.equal([
      'conv_seg.weight', 'conv_seg.bias',
      ...[0, 1, 2, 3].flatMap((i) => [`psp_modules.${i}.1.conv.weight`, `psp_modules.${i}.1.bn.weight`, `psp_modules.${i}.1.bn.bias`]),
      'bottleneck.conv.weight', 'bottleneck.bn.weight', 'bottleneck.bn.bias',
    ]);
    head.dispose();
  });

  it('full-size PSPHead (2048 → 512, 19 classes) has 23,083,539 parameters', () => {
    const head = build({ in_channels: 2048, channels: 512, num_classes: 19 });
    expect(head.numParameters()).to.equal(23083539);
    expect(head.child('psp_modules').numParameters()).to.equal(4198400);
    expect(head.child('bottleneck').numParameters()).to.equal(18875392);
    head.dispose();
  });

  it('forwardTrain gives the loss dict; forward/backward leaves no tensor behind', () => {
    const head = build();
    const inputs = features();
    const labels = tf.zeros([2, 24, 24], 'int32') as tf.Tensor3D;
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => {
      const losses = head.forwardTrain(inputs, labels);
      expect(Object.keys(losses)).to.deep.equal(['loss_ce', 'acc_seg']);
      return losses.loss_ce as tf.Scalar;
    });
    value.dispose();
    tf.dispose(grads);
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([...inputs, labels]);
    head.dispose();
  });

  it('rejects bad pool_scales and a missing num_classes with the config path', () => {
    expect(() => build({ pool_scales: [0, 2] })).to.throw(SegkitError, 'model.decode_head.pool_scales.0: expected positive integers');
    expect(() => kernel.build('heads', { type: 'PSPHead', in_channels: 8, channels: 4 }, { path: 'model.decode_head' })).to.throw(SegkitError, 'model.decode_head.num_classes: required option missing');
  });
});
