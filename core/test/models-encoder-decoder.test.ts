import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { EncoderDecoder, SegkitError, nn, slideInference, slideWindows, type Kernel } from '../src';
import { TOY_MODEL, ToyHead, toyKernel } from '../src/testing';
import { expectClose, expectNoLeak } from './nn-helpers';

describe('EncoderDecoder and the decode-head base', () => {
  let kernel: Kernel;
  before(async () => {
    kernel = await toyKernel();
  });
  const build = (cfg: Record<string, unknown> = TOY_MODEL) => (kernel.build('segmentors', cfg, { path: 'model' }) as EncoderDecoder);
  const images = () => tf.randomNormal([2, 8, 8, 3]) as tf.Tensor4D;
  const labels = () => tf.tensor3d(Array.from({ length: 128 }, (_, i) => (i % 7 === 0 ? 255 : i % 3)), [2, 8, 8], 'int32');

  it('names parameters like MMSegmentation: conv_seg first in each head, auxiliary_head, list heads indexed', () => {
    const model = build();
    const names = model.namedParameters().map(([name]) => name);
    expect(names.slice(0, 3)).to.deep.equal(['backbone.stem.conv.weight', 'backbone.stem.bn.weight', 'backbone.stem.bn.bias']);
    expect(names.filter((n) => n.startsWith('decode_head.'))).to.deep.equal([
      'decode_head.conv_seg.weight', 'decode_head.conv_seg.bias', 'decode_head.conv.conv.weight', 'decode_head.conv.bn.weight', 'decode_head.conv.bn.bias',
    ]);
    expect(names).to.include('auxiliary_head.conv.conv.bias'); // no norm → the conv keeps its bias
    const listed = build({ ...TOY_MODEL, auxiliary_head: [TOY_MODEL.auxiliary_head, TOY_MODEL.auxiliary_head] });
    expect(listed.namedParameters().map(([n]) => n)).to.include.members(['auxiliary_head.0.conv_seg.weight', 'auxiliary_head.1.conv_seg.weight']);
    model.dispose();
    listed.dispose();
  });

  it('checkLabels asks every loss of the decode and auxiliary heads (asynchronous readback), leaving nothing behind', async () => {
    const model = build();
    const good = labels();
    const before = tf.memory().numTensors;
    await model.checkLabels(good);
    const rejection = (values: number[]) => {
      const bad = tf.tensor3d(values, [1, 1, values.length], 'int32');
      return model.checkLabels(bad).then(() => null, (error: Error) => error.message).finally(() => bad.dispose());
    };
    expect(await rejection([0, 2, 3])).to.equal(
      "TinyCrossEntropy (weight 1): label 3 is outside [0, 3) and is not the ignore index 255; check the dataset's label values (reduce_zero_label, classes) or the head's num_classes/ignore_index",
    );
    expect(await rejection([-1, 255])).to.match(/^TinyCrossEntropy \(weight 1\): label -1 is outside \[0, 3\)/);
    expect(tf.memory().numTensors).to.equal(before);
    good.dispose();
    model.dispose();
  });

  it('initialises conv_seg with Normal(0, 0.01) and a zero bias', () => {
    const model = build({ ...TOY_MODEL, decode_head: { ...TOY_MODEL.decode_head, channels: 64, num_classes: 32 } });
    const head = model.decodeHead as ToyHead;
    const weights = Array.from(head.convSeg.weight.dataSync());
    const std = Math.sqrt(weights.reduce((sum, v) => sum + v * v, 0) / weights.length);
    expect(std).to.be.closeTo(0.01, 0.001);
    expect(Array.from(head.convSeg.bias!.dataSync()).every((v) => v === 0)).to.equal(true);
    model.dispose();
  });

  it('forwardTrain prefixes decode./aux. (aux_0./aux_1. for a list); the default CE config trains', () => {
    const model = build();
    const x = images();
    const y = labels();
    const losses = model.forwardTrain(x, y);
    expect(Object.keys(losses)).to.deep.equal(['decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg']);
    tf.dispose(losses);
    const listed = build({ ...TOY_MODEL, auxiliary_head: [TOY_MODEL.auxiliary_head, TOY_MODEL.auxiliary_head] });
    const listedLosses = listed.forwardTrain(x, y);
    expect(Object.keys(listedLosses)).to.deep.equal(['decode.loss_ce', 'decode.acc_seg', 'aux_0.loss_ce', 'aux_0.acc_seg', 'aux_1.loss_ce', 'aux_1.acc_seg']);
    tf.dispose(listedLosses);
    // A few plain SGD steps lower the summed loss on a fixed batch.
    const totalLoss = () => tf.tidy(() => {
      const dict = model.forwardTrain(x, y);
      return tf.addN(Object.entries(dict).filter(([k]) => k.includes('loss')).map(([, v]) => v)) as tf.Scalar;
    });
    model.eval();
    const start = totalLoss().dataSync()[0]!;
    model.train();
    for (let step = 0; step < 10; step++) {
      tf.tidy(() => {
        const { grads } = tf.variableGrads(totalLoss);
        for (const [, variable] of model.trainableParameters()) variable.assign(tf.sub(variable, tf.mul(grads[variable.name]!, 0.5)));
      });
    }
    model.eval();
    expect(totalLoss().dataSync()[0]!).to.be.lessThan(start);
    model.dispose();
    listed.dispose();
  });

  it('a forward/backward pass leaves no tensor behind', () => {
    const model = build();
    const x = images();
    const y = labels();
    expectNoLeak(() => {
      const { value, grads } = tf.variableGrads(() => {
        const dict = model.forwardTrain(x, y);
        return tf.addN([dict['decode.loss_ce']!, dict['aux.loss_ce']!]) as tf.Scalar;
      });
      value.dispose();
      tf.dispose(grads);
      model.predict(x).dispose();
    });
    x.dispose();
    y.dispose();
    model.dispose();
  });

  it('train vs eval: BatchNorm running stats move only in train mode; Dropout2d is active only in train mode', () => {
    const model = build();
    const x = images();
    const bn = model.backbone.child<nn.ConvModule>('stem').norm as nn.BatchNorm2d;
    model.eval();
    const first = model.encodeDecode(x);
    const second = model.encodeDecode(x);
    expectClose(second, Array.from(first.dataSync()), 0);
    expect(Array.from(bn.runningMean!.dataSync())).to.deep.equal([0, 0, 0, 0]);
    expect(model.namedModules().every(([, m]) => !m.training)).to.equal(true);
    model.train();
    const head = model.decodeHead as ToyHead;
    expect(head.dropout!.training).to.equal(true);
    tf.dispose(model.forwardTrain(x, labels()));
    expect(Array.from(bn.runningMean!.dataSync()).some((v) => v !== 0)).to.equal(true);
    // Dropout2d(0.1) in train mode zeroes whole channels: the head input changes between calls.
    const feature = tf.ones([1, 2, 2, 64]) as tf.Tensor4D;
    const dropped = head.dropout!.forward(feature);
    expect(new Set(Array.from(dropped.dataSync())).has(0)).to.equal(true); // fails with probability 0.9^64 ≈ 0.1%
    model.dispose();
  });

  it('predict returns int32 label maps at the input size (argmax of the inference logits); oriShape resizes', () => {
    const model = build().eval();
    const x = images();
    const prediction = model.predict(x);
    expect(prediction.dtype).to.equal('int32');
    expect(prediction.shape).to.deep.equal([2, 8, 8]);
    expect(Array.from(prediction.dataSync())).to.deep.equal(Array.from(tf.argMax(model.encodeDecode(x), 3).dataSync()));
    expect(model.inference(x, { oriShape: [5, 7] }).shape).to.deep.equal([2, 5, 7, 3]);
    expect(model.predict(x, { oriShape: [5, 7] }).shape).to.deep.equal([2, 5, 7]);
    model.dispose();
  });

  it('a single-channel head predicts sigmoid(logit) > threshold (default 0.3)', () => {
    const model = build({ ...TOY_MODEL, decode_head: { ...TOY_MODEL.decode_head, num_classes: 2, out_channels: 1 } }).eval();
    const head = model.decodeHead as ToyHead;
    expect(head.threshold).to.equal(0.3);
    head.convSeg.weight.assign(tf.zerosLike(head.convSeg.weight));
    const x = images();
    head.convSeg.bias!.assign(tf.tensor1d([-1])); // sigmoid(−1) ≈ 0.269
    expect(new Set(model.predict(x).dataSync())).to.deep.equal(new Set([0]));
    head.convSeg.bias!.assign(tf.tensor1d([-0.5])); // sigmoid(−0.5) ≈ 0.378
    expect(new Set(model.predict(x).dataSync())).to.deep.equal(new Set([1]));
    model.dispose();
  });

  it('slide windows: 584×565 with crop 64 / stride 42 is 14 × 13 = 182 windows, all inside the image', () => {
    const windows = slideWindows(584, 565, [64, 64], [42, 42]);
    expect(windows).to.have.length(182);
    expect(windows[0]).to.deep.equal({ y1: 0, y2: 64, x1: 0, x2: 64 });
    // The last row/column are shifted back to end at the border: 13·42 = 546 → 520..584; 12·42 = 504 → 501..565.
    expect(windows[windows.length - 1]).to.deep.equal({ y1: 520, y2: 584, x1: 501, x2: 565 });
    expect(windows.every((w) => w.y2 - w.y1 === 64 && w.x2 - w.x1 === 64 && w.y1 >= 0 && w.x2 <= 565)).to.equal(true);
    // An image smaller than the crop is one window of its own size.
    expect(slideWindows(30, 50, [64, 64], [42, 42])).to.deep.equal([{ y1: 0, y2: 30, x1: 0, x2: 50 }]);
    expect(() => slideWindows(10, 10, [0, 64], [42, 42])).to.throw(SegkitError, /crop_size and stride/);
  });

  it('slide inference averages overlapping windows per pixel', () => {
    // Each window's "logit" is the window's mean; columns 0-1 see window A (mean 1.5), 4-5 window B (3.5), 2-3 both.
    const image = tf.tensor4d(Array.from({ length: 24 }, (_, i) => i % 6), [1, 4, 6, 1]);
    let calls = 0;
    const averaged = slideInference(image, [4, 4], [2, 2], (crop) => {
      calls++;
      return tf.mul(tf.onesLike(crop), tf.mean(crop));
    });
    expect(calls).to.equal(2);
    expectClose(averaged, [0, 1, 2, 3].flatMap(() => [1.5, 1.5, 2.5, 2.5, 3.5, 3.5]));
  });

  it('slide inference of a segmentor with constant logits gives those logits everywhere, from test_cfg', () => {
    const model = build({ ...TOY_MODEL, test_cfg: { mode: 'slide', crop_size: [4, 4], stride: [3, 3] } }).eval();
    const head = model.decodeHead as ToyHead;
    // Zero conv_seg weights → logits equal the bias everywhere.
    head.convSeg.weight.assign(tf.zerosLike(head.convSeg.weight));
    head.convSeg.bias!.assign(tf.tensor1d([1, 2, 3]));
    const x = tf.randomNormal([1, 8, 10, 3]) as tf.Tensor4D;
    expectNoLeak(() => {
      const logits = model.inference(x);
      expect(logits.shape).to.deep.equal([1, 8, 10, 3]);
      expectClose(logits, Array.from({ length: 80 }, () => [1, 2, 3]).flat(), 1e-5);
      logits.dispose();
    });
    model.dispose();
  });

  it('config errors name the path: bad in_index, input_transform lists, slide without crop', async () => {
    const badIndex = build({ ...TOY_MODEL, decode_head: { ...TOY_MODEL.decode_head, in_index: 5 } });
    expect(() => badIndex.forwardTrain(images(), labels())).to.throw(SegkitError, 'model.decode_head.in_index: 5 is out of range for the 2 feature maps');
    badIndex.dispose();
    expect(() => build({ ...TOY_MODEL, decode_head: { ...TOY_MODEL.decode_head, input_transform: 'resize_concat' } })).to.throw(SegkitError, "model.decode_head: with input_transform 'resize_concat', in_channels and in_index must be lists");
    expect(() => build({ ...TOY_MODEL, test_cfg: { mode: 'slide' } })).to.throw(SegkitError, 'model.test_cfg: slide mode needs crop_size and stride');
    expect(() => build({ ...TOY_MODEL, decode_head: { ...TOY_MODEL.decode_head, out_channels: 2 } })).to.throw(SegkitError, 'model.decode_head.out_channels: expected num_classes (3) or 1, got 2');
  });

  it('resize_concat resizes the selected inputs to the first one and concatenates them', () => {
    const model = build({ ...TOY_MODEL, decode_head: { ...TOY_MODEL.decode_head, in_channels: [4, 4], in_index: [0, 1], input_transform: 'resize_concat' } });
    expect((model.decodeHead as ToyHead).inChannels).to.equal(8);
    const logits = tf.tidy(() => model.decodeHead.forward(model.extractFeat(images())));
    expect(logits.shape).to.deep.equal([2, 8, 8, 3]);
    logits.dispose();
    // Values: a 2×2 map [1,2;3,4] (4 equal channels) and a 1×1 map of 10s → each pixel's first 4 channels from
    // the first map, the last 4 from the second resized to 2×2 (bilinear of one value: 10 everywhere).
    const before = tf.memory().numTensors;
    const concatenated = tf.tidy(() => {
      const first = tf.tile(tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]), [1, 1, 1, 4]);
      const second = tf.fill([1, 1, 1, 4], 10);
      return (model.decodeHead as unknown as { transformInputs(f: tf.Tensor[]): tf.Tensor4D }).transformInputs([first, second]);
    });
    expect(concatenated.shape).to.deep.equal([1, 2, 2, 8]);
    expect(Array.from(concatenated.dataSync())).to.deep.equal([1, 1, 1, 1, 10, 10, 10, 10, 2, 2, 2, 2, 10, 10, 10, 10, 3, 3, 3, 3, 10, 10, 10, 10, 4, 4, 4, 4, 10, 10, 10, 10]);
    concatenated.dispose();
    expect(tf.memory().numTensors).to.equal(before);
    model.dispose();
  });

  it('stateDict round trip between two segmentors', () => {
    const source = build();
    tf.dispose(source.forwardTrain(images(), labels()));
    const target = build();
    target.loadStateDict(source.stateDict());
    const x = images();
    source.eval();
    target.eval();
    expectClose(target.encodeDecode(x), Array.from(source.encodeDecode(x).dataSync()), 1e-6);
    expect([...target.stateDict().keys()]).to.include('backbone.stem.bn.running_var');
    source.dispose();
    target.dispose();
  });
});
