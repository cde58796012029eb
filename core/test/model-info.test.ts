import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { configCropSize, describeModel, formatModelInfo, nn, type EncoderDecoder, type Kernel } from '../src';
import { TOY_MODEL, toyKernel } from '../src/testing';

describe('describeModel / formatModelInfo', () => {
  let kernel: Kernel;
  before(async () => {
    kernel = await toyKernel();
  });

  it('counts parameters and tensors per top-level module and MMCV FLOPs of the decode path (hand values)', () => {
    const model = (kernel.build('segmentors', TOY_MODEL, { path: 'model' }) as EncoderDecoder);
    const before = tf.memory().numTensors;
    const report = describeModel(model, [8, 8]);
    expect(tf.memory().numTensors).to.equal(before);
    expect(report.inputShape).to.deep.equal([3, 8, 8]);
    expect(report.modules.map((m) => [m.name, m.type, m.parameters, m.tensors])).to.deep.equal([
      ['backbone', 'ToyBackbone', 108 + 8, 3],
      ['decode_head', 'ToyHead', 4 * 3 + 3 + 144 + 8, 5],
      ['auxiliary_head', 'ToyHead', 2 * 3 + 3 + 72 + 2, 4],
    ]);
    expect([report.parameters, report.trainableParameters, report.tensors]).to.deep.equal([366, 366, 12]);
    // backbone: conv 64·4·27 + BN 2·256 + ReLU 256 + max-pool input 256; decode head at 4×4: conv 16·4·36 +
    // BN 2·64 + ReLU 64 + conv_seg 16·3·4 + bias 16·3; the auxiliary head is not on the inference path.
    expect(report.modules.map((m) => m.flops)).to.deep.equal([6912 + 512 + 256 + 256, 2304 + 128 + 64 + 192 + 48, 0]);
    expect(report.flops).to.equal(10672);
    expect(model.training).to.equal(true);
    model.dispose();
  });

  it('the shapes-only count equals the count of a real forward', () => {
    const model = (kernel.build('segmentors', TOY_MODEL, { path: 'model' }) as EncoderDecoder).eval();
    const x = tf.randomNormal([1, 16, 8, 3]) as tf.Tensor4D;
    const real = nn.countFlops(() => model.encodeDecode(x).dispose()).counter.total;
    expect(describeModel(model, [16, 8]).flops).to.equal(real);
    x.dispose();
    model.dispose();
  });

  it('formats a table with totals and trainable counts', () => {
    const model = (kernel.build('segmentors', TOY_MODEL, { path: 'model' }) as EncoderDecoder);
    model.backbone.requiresGrad(false);
    const text = formatModelInfo(describeModel(model, [8, 8]));
    expect(text).to.contain('Input shape: (3, 8, 8)');
    expect(text).to.contain('Params: 0.00 M (366 in 12 tensors; 250 trainable)');
    expect(text.split('\n').find((line) => line.startsWith('backbone'))).to.match(/^backbone\s+ToyBackbone\s+116\s+0\s+3\s+0\.00 GFLOPs$/);
    model.dispose();
  });

  it('configCropSize: the train RandomCrop (also inside RepeatDataset), else test_cfg.crop_size', () => {
    const pipeline = [{ type: 'LoadImageFromFile' }, { type: 'RandomCrop', crop_size: [64, 64], cat_max_ratio: 0.75 }];
    expect(configCropSize({ data: { train: { type: 'RepeatDataset', times: 40000, dataset: { type: 'DRIVEDataset', pipeline } } } })).to.deep.equal([64, 64]);
    expect(configCropSize({ model: { test_cfg: { mode: 'slide', crop_size: [256, 256], stride: [170, 170] } } })).to.deep.equal([256, 256]);
    expect(configCropSize({ model: { test_cfg: { mode: 'whole' } } })).to.equal(undefined);
  });
});
