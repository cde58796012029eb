import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createKernel, definePlugin, nn, SegkitError, z, type Kernel, type Loss } from '@segkit/core';
import { plugin, type FCNHead } from '../src';

/** Stands in for @segkit/loss-cross-entropy: these tests only build and run the head. */
const stubLoss = definePlugin({
  name: 'stub-loss',
  version: '0.0.0',
  components: { losses: [{ type: 'CrossEntropyLoss', schema: z.object({ use_sigmoid: z.boolean().optional(), loss_weight: z.number().optional() }), create: (): Loss => ({ lossName: 'loss_ce', usesPixelWeight: true, forward: (logits) => tf.mean(logits) }) }] },
});

describe('FCNHead', () => {
  let kernel: Kernel;
  before(async () => {
    kernel = await createKernel({ plugins: [plugin, stubLoss], backend: 'cpu', logger: { info() {}, warn() {} } });
  });
  const build = (cfg: Record<string, unknown> = {}) =>
    (kernel.build('heads', { type: 'FCNHead', in_channels: 6, in_index: 2, channels: 4, num_classes: 3, norm_cfg: { type: 'SyncBN', requires_grad: true }, ...cfg }, { path: 'model.auxiliary_head' }) as FCNHead);
  const features = () => [tf.randomNormal([2, 10, 10, 6]), tf.randomNormal([2, 10, 10, 6]), tf.randomNormal([2, 5, 7, 6])];

  it('defaults (num_convs 2, concat_input) : convs.0, convs.1, conv_cat; logits at the selected feature size', () => {
    const head = build();
    expect(head.namedParameters().map(([n]) => n)).to.deep.equal([
      'conv_seg.weight', 'conv_seg.bias',
      'convs.0.conv.weight', 'convs.0.bn.weight', 'convs.0.bn.bias',
      'convs.1.conv.weight', 'convs.1.bn.weight', 'convs.1.bn.bias',
      'conv_cat.conv.weight', 'conv_cat.bn.weight', 'conv_cat.bn.bias',
    ]);
    expect(head.convCat!.conv.inChannels).to.equal(10);
    const inputs = features();
    const logits = head.forward(inputs);
    expect(logits.shape).to.deep.equal([2, 5, 7, 3]);
    tf.dispose([...inputs, logits]);
    head.dispose();
  });

  it('dilation pads by (k // 2)·dilation so the size is kept; num_convs 0 needs in_channels = channels', () => {
    const head = build({ num_convs: 1, concat_input: false, dilation: 3 });
    expect(head.convs!.at<nn.ConvModule>(0).conv.padding).to.deep.equal([3, 3]);
    const inputs = features();
    expect(head.forward(inputs).shape).to.deep.equal([2, 5, 7, 3]);
    expect(() => build({ num_convs: 0 })).to.throw(SegkitError, 'model.auxiliary_head: with num_convs 0, in_channels (6) must equal channels (4)');
    const identity = build({ num_convs: 0, channels: 6, concat_input: false });
    expect(identity.namedParameters().map(([n]) => n)).to.deep.equal(['conv_seg.weight', 'conv_seg.bias']);
    tf.dispose(inputs);
    head.dispose();
    identity.dispose();
  });

  it('full-size auxiliary heads: PSPNet 1024 → 256 (19 classes) 2,364,691; UNet decode 64 → 64 (2 classes) 37,122; 5 tensors each', () => {
    const aux = build({ in_channels: 1024, channels: 256, num_classes: 19, num_convs: 1, concat_input: false });
    expect(aux.numParameters()).to.equal(2364691);
    expect(aux.parameters()).to.have.length(5);
    const unetDecode = build({ in_channels: 64, channels: 64, num_classes: 2, num_convs: 1, concat_input: false });
    expect(unetDecode.numParameters()).to.equal(37122);
    aux.dispose();
    unetDecode.dispose();
  });

  it('train vs eval: Dropout2d changes the logits only in train mode', () => {
    const head = build({ dropout_ratio: 0.5, num_convs: 1, concat_input: false, channels: 16 });
    const inputs = features();
    const twice = () => tf.tidy(() => [head.forward(inputs), head.forward(inputs)].map((logits) => Array.from(logits.dataSync())));
    head.eval();
    const [evalA, evalB] = twice();
    expect(evalA).to.deep.equal(evalB);
    head.train();
    // 2 samples × 16 channels drawn twice: equal masks have probability 2⁻³².
    const [trainA, trainB] = twice();
    expect(trainA).to.not.deep.equal(trainB);
    tf.dispose(inputs);
    head.dispose();
  });

  it('loss_decode as a list builds every loss; a bad option names its path', () => {
    const head = build({ loss_decode: [{ type: 'CrossEntropyLoss' }, { type: 'CrossEntropyLoss', loss_weight: 3 }] });
    expect(head.lossDecode).to.have.length(2);
    head.dispose();
    expect(() => build({ dilation: 0 })).to.throw(SegkitError, 'model.auxiliary_head.dilation: expected a positive integer, got 0');
    expect(() => build({ loss_decode: { type: 'DiceLos' } })).to.throw(SegkitError, "model.auxiliary_head.loss_decode.type: unknown losses type 'DiceLos'");
  });

  it('forward/backward leaves no tensor behind', () => {
    const head = build();
    const inputs = features();
    const labels = tf.zeros([2, 5, 7], 'int32') as tf.Tensor3D;
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => head.forwardTrain(inputs, labels).loss_ce as tf.Scalar);
    value.dispose();
    tf.dispose(grads);
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([...inputs, labels]);
    head.dispose();
  });
});
