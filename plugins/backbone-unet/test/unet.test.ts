import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createKernel, SegkitError, type Kernel } from '@segkit/core';
import { plugin, type UNet } from '../src';

describe('UNet backbone', () => {
  let kernel: Kernel;
  before(async () => {
    kernel = await createKernel({ plugins: [plugin], backend: 'cpu', logger: { info() {}, warn() {} } });
  });
  const build = (cfg: Record<string, unknown> = {}) => (kernel.build('backbones', { type: 'UNet', base_channels: 2, ...cfg }, { path: 'model.backbone' }) as UNet);

  it('s5-d16 (tiny widths): five outputs, deepest first: 16c@1/16, 8c@1/8, 4c@1/4, 2c@1/2... at base 2', () => {
    const unet = build();
    const outs = unet.forward(tf.zeros([2, 32, 48, 3]));
    expect(outs.map((o) => o.shape)).to.deep.equal([[2, 2, 3, 32], [2, 4, 6, 16], [2, 8, 12, 8], [2, 16, 24, 4], [2, 32, 48, 2]]);
    tf.dispose(outs);
    unet.dispose();
  });

  it('parameter names follow MMSegmentation (max-pool at encoder.i.0, InterpConv at upsample.interp_upsample.1)', () => {
    const unet = build();
    const names = unet.namedParameters().map(([name]) => name);
    expect(names.slice(0, 3)).to.deep.equal(['encoder.0.0.convs.0.conv.weight', 'encoder.0.0.convs.0.bn.weight', 'encoder.0.0.convs.0.bn.bias']);
    expect(names).to.include.members([
      'encoder.1.1.convs.0.conv.weight',
      'encoder.4.1.convs.1.bn.bias',
      'decoder.0.conv_block.convs.1.bn.weight',
      'decoder.0.upsample.interp_upsample.1.conv.weight',
      'decoder.3.upsample.interp_upsample.1.bn.bias',
    ]);
    expect(names).to.have.length(66);
    unet.dispose();
  });

  it('full-size UNet (base 64) has 28,949,568 parameters in 66 tensors, per part as MMSegmentation', () => {
    const unet = build({ base_channels: 64 });
    expect(unet.numParameters()).to.equal(28949568);
    expect(unet.parameters()).to.have.length(66);
    expect(unet.encoder.items().map((stage) => stage.numParameters())).to.deep.equal([38848, 221696, 885760, 3540992, 14159872]);
    expect(unet.decoder.items().map((level) => level.numParameters())).to.deep.equal([119168, 475904, 1902080, 7605248]);
    unet.dispose();
  });

  it('an input not divisible by the total downsampling is a clear error', () => {
    const unet = build();
    expect(() => unet.forward(tf.zeros([1, 40, 32, 3]))).to.throw(SegkitError, "model.backbone: the input size 40×32 must be divisible by UNet's total downsampling 16");
    const shallow = build({ num_stages: 3, strides: [1, 1, 1], enc_num_convs: [1, 1, 1], dec_num_convs: [1, 1], downsamples: [true, false], enc_dilations: [1, 1, 1], dec_dilations: [1, 1] });
    expect(shallow.downsampleRate).to.equal(2);
    const outs = shallow.forward(tf.zeros([1, 6, 6, 3]));
    expect(outs.map((o) => o.shape)).to.deep.equal([[1, 3, 3, 8], [1, 3, 3, 4], [1, 6, 6, 2]]);
    tf.dispose(outs);
    unet.dispose();
    shallow.dispose();
  });

  it('rejects option lists of the wrong length and unsupported upsample types', () => {
    expect(() => build({ strides: [1, 1, 1] })).to.throw(SegkitError, 'model.backbone.strides: expected 5 entries for num_stages 5, got 3');
    expect(() => build({ upsample_cfg: { type: 'DeconvModule' } })).to.throw(SegkitError, "only upsample_cfg type 'InterpConv' is supported");
  });

  it('forward/backward leaves no tensor behind; norm_eval keeps BatchNorm in eval mode', () => {
    const unet = build({ norm_eval: true });
    unet.train();
    expect(unet.namedModules().filter(([n]) => n.endsWith('.bn')).every(([, m]) => !m.training)).to.equal(true);
    const x = tf.randomNormal([1, 16, 16, 3]);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => tf.addN(unet.forward(x).map((o) => tf.mean(o))) as tf.Scalar);
    value.dispose();
    tf.dispose(grads);
    expect(tf.memory().numTensors).to.equal(before);
    x.dispose();
    unet.dispose();
  });
});
