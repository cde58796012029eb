import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createKernel, nn, SegkitError, type Kernel } from '@segkit/core';
import { plugin, type ResNet, type Bottleneck } from '../src';

describe('ResNet / ResNetV1c backbone', () => {
  let kernel: Kernel;
  before(async () => {
    kernel = await createKernel({ plugins: [plugin], backend: 'cpu', logger: { info() {}, warn() {} } });
  });
  const build = (cfg: Record<string, unknown>) => (kernel.build('backbones', cfg, { path: 'model.backbone' }) as ResNet);
  // PSPNet's backbone settings at tiny widths (stem 4 ≠ 4·base 8, so layer1 has a downsample as in the real model).
  const D8 = { type: 'ResNetV1c', depth: 50, stem_channels: 4, base_channels: 2, dilations: [1, 1, 2, 4], strides: [1, 2, 1, 1], contract_dilation: true };

  it('ResNetV1c-50 D8 (tiny widths): four outputs at strides 4, 8, 8, 8 with 4× expanded channels', () => {
    const backbone = build(D8);
    const outs = backbone.forward(tf.zeros([2, 32, 48, 3]));
    expect(outs.map((o) => o.shape)).to.deep.equal([[2, 8, 12, 8], [2, 4, 6, 16], [2, 4, 6, 32], [2, 4, 6, 64]]);
    tf.dispose(outs);
    backbone.dispose();
  });

  it('uses contracted dilations (layer3: 1, 2, 2, 2, 2, 2; layer4: 2, 4, 4) and MMSegmentation parameter names', () => {
    const backbone = build(D8);
    const dilations = (layer: string) => backbone.child<nn.Sequential>(layer).namedChildren().map(([, block]) => (block as Bottleneck).conv2.dilation[0]);
    expect(dilations('layer3')).to.deep.equal([1, 2, 2, 2, 2, 2]);
    expect(dilations('layer4')).to.deep.equal([2, 4, 4]);
    const names = backbone.namedParameters().map(([name]) => name);
    expect(names.slice(0, 9)).to.deep.equal(['stem.0.weight', 'stem.1.weight', 'stem.1.bias', 'stem.3.weight', 'stem.4.weight', 'stem.4.bias', 'stem.6.weight', 'stem.7.weight', 'stem.7.bias']);
    expect(names).to.include.members(['layer3.5.conv2.weight', 'layer1.0.downsample.0.weight', 'layer1.0.downsample.1.weight', 'layer4.2.bn3.bias']);
    expect(names).to.have.length(165);
    expect(names.filter((n) => n.includes('downsample'))).to.have.length(12);
    backbone.dispose();
  });

  it('full-size ResNetV1c-50 has 23,527,264 parameters in 165 tensors (stem 28,768)', () => {
    const backbone = build({ type: 'ResNetV1c', depth: 50, dilations: [1, 1, 2, 4], strides: [1, 2, 1, 1], contract_dilation: true });
    expect(backbone.numParameters()).to.equal(23527264);
    expect(backbone.parameters()).to.have.length(165);
    expect(backbone.child('stem').numParameters()).to.equal(28768);
    backbone.dispose();
  });

  it('zero-inits the last BN of each block and Kaiming-inits the convs', () => {
    const backbone = build(D8);
    const block = backbone.child<nn.Sequential>('layer2').at<Bottleneck>(0);
    expect(Array.from((block.bn3 as nn.BatchNorm2d).weight!.dataSync()).every((v) => v === 0)).to.equal(true);
    expect(Array.from((block.bn2 as nn.BatchNorm2d).weight!.dataSync()).every((v) => v === 1)).to.equal(true);
    backbone.dispose();
  });

  it('ResNet-18 (BasicBlock, 7×7 stem conv1/bn1) with out_indices and plain strides', () => {
    const backbone = build({ type: 'ResNet', depth: 18, base_channels: 2, stem_channels: 4, out_indices: [1, 3] });
    const outs = backbone.forward(tf.zeros([1, 64, 64, 3]));
    expect(outs.map((o) => o.shape)).to.deep.equal([[1, 8, 8, 4], [1, 2, 2, 16]]);
    expect(backbone.namedParameters().map(([n]) => n).slice(0, 5)).to.deep.equal(['conv1.weight', 'bn1.weight', 'bn1.bias', 'layer1.0.conv1.weight', 'layer1.0.bn1.weight']);
    tf.dispose(outs);
    backbone.dispose();
  });

  it('frozen_stages freezes the stem and the first stages (no grad, eval mode kept); norm_eval keeps BN in eval', () => {
    const backbone = build({ ...D8, frozen_stages: 1, norm_eval: true });
    backbone.train();
    const frozen = backbone.namedParameters().filter(([, v]) => !v.trainable).map(([n]) => n);
    expect(frozen.every((n) => n.startsWith('stem.') || n.startsWith('layer1.'))).to.equal(true);
    expect(frozen).to.have.length(9 + 3 * 9 + 3);
    expect(backbone.child('stem').training).to.equal(false);
    expect(backbone.child('layer2').training).to.equal(true);
    const bn = backbone.child<nn.Sequential>('layer2').at<Bottleneck>(0).bn1;
    expect(bn.training).to.equal(false);
    backbone.dispose();
  });

  it('forward/backward leaves no tensor behind', () => {
    const backbone = build({ ...D8, depth: 18, stem_channels: 4 });
    const x = tf.randomNormal([2, 16, 16, 3]);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => tf.addN(backbone.forward(x).map((o) => tf.mean(o))) as tf.Scalar);
    value.dispose();
    tf.dispose(grads);
    expect(tf.memory().numTensors).to.equal(before);
    x.dispose();
    backbone.dispose();
  });

  it('rejects bad options with the config path', () => {
    expect(() => build({ type: 'ResNetV1c', depth: 42 })).to.throw(SegkitError, 'model.backbone.depth: expected a depth of 18, 34, 50, 101 or 152');
    expect(() => build({ type: 'ResNetV1c', depth: 50, strides: [1, 2] })).to.throw(SegkitError, 'model.backbone: strides (2) and dilations (4) need one entry per stage (num_stages 4)');
    expect(() => build({ type: 'ResNetV1c', depth: 50, deep_stem: false })).to.throw(SegkitError, /deep_stem: unknown option of ResNetV1c/);
    expect(() => build({ type: 'ResNetV1c', depth: 50, norm_cfg: { type: 'IN' } })).to.throw(SegkitError, "model.backbone.norm_cfg.type: unknown norm layer type 'IN'");
  });
});
