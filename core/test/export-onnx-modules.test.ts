import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import * as ort from 'onnxruntime-node';
import { nn, SegkitError } from '../src';
import { buildOnnxModel, decodeOnnxModel, ONNX_OPSET, type OnnxGraphInput } from '../src/export/onnx';
import type { OnnxExportContext, OnnxValue } from '../src/export/onnx/types';

/** NHWC tensor → NCHW float32 data for onnxruntime. */
async function toNchw(x: tf.Tensor4D): Promise<Float32Array> {
  const transposed = tf.transpose(x, [0, 3, 1, 2]);
  const data = (await transposed.data()) as Float32Array;
  transposed.dispose();
  return data;
}

/** Exports `module` for an input of `shape` (NCHW; strings are dynamic dims), runs it in onnxruntime on `x`, returns NHWC. */
async function runInOnnxRuntime(module: nn.Module, x: tf.Tensor4D, shape: OnnxGraphInput['shape']): Promise<{ y: tf.Tensor4D; bytes: Uint8Array }> {
  const { bytes } = await buildOnnxModel(module, { inputs: [{ name: 'x', shape }], build: (ctx, input) => ctx.call(module, input), outputs: [{ name: 'y' }] });
  const session = await ort.InferenceSession.create(bytes);
  const [n, h, w, c] = x.shape;
  const { y } = await session.run({ x: new ort.Tensor('float32', await toNchw(x), [n, c, h, w]) });
  await session.release();
  const nchw = tf.tensor4d(y!.data as Float32Array, y!.dims as [number, number, number, number]);
  const nhwc = tf.transpose(nchw, [0, 2, 3, 1]) as tf.Tensor4D;
  nchw.dispose();
  return { y: nhwc, bytes };
}

/** Asserts max |actual − expected| ≤ tolerance · max |expected| (a relative error on the tensor's scale) and equal shapes. */
async function expectRelativelyClose(actual: tf.Tensor, expected: tf.Tensor, tolerance = 1e-5): Promise<void> {
  expect(actual.shape).to.deep.equal(expected.shape);
  const [a, e] = [(await actual.data()) as Float32Array, (await expected.data()) as Float32Array];
  let maxDiff = 0;
  let scale = 0;
  for (let i = 0; i < e.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i]! - e[i]!));
    scale = Math.max(scale, Math.abs(e[i]!));
  }
  expect(scale, 'reference is all zeros').to.be.greaterThan(0);
  expect(maxDiff / scale, `max difference ${maxDiff} on a scale of ${scale}`).to.be.at.most(tolerance);
}

/**
 * Checks a module's ONNX export against its forward pass at a static and at a dynamic input size, with no
 * tensor left behind by the export.
 */
async function expectSameAsForward(module: nn.Module, shape: [number, number, number, number], tolerance = 1e-5): Promise<void> {
  module.eval();
  const x = tf.randomNormal(shape, 0, 1, 'float32', 7) as tf.Tensor4D;
  const expected = module.forward(x) as tf.Tensor4D;
  const [n, h, w, c] = shape;
  for (const inputShape of [[n, c, h, w], ['batch', c, 'height', 'width']] as OnnxGraphInput['shape'][]) {
    const before = tf.memory().numTensors;
    const { y } = await runInOnnxRuntime(module, x, inputShape);
    await expectRelativelyClose(y, expected, tolerance);
    y.dispose();
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  }
  tf.dispose([x, expected]);
  module.dispose();
}

/** Randomizes a BatchNorm's affine parameters and running statistics (fresh ones make it almost the identity). */
function randomizeNorm(norm: nn.BatchNorm2d | nn.GroupNorm): void {
  tf.tidy(() => {
    norm.weight?.assign(tf.randomUniform(norm.weight.shape, 0.5, 1.5, 'float32', 1));
    norm.bias?.assign(tf.randomNormal(norm.bias.shape, 0, 0.5, 'float32', 2));
    if (norm instanceof nn.BatchNorm2d) {
      norm.runningMean!.assign(tf.randomNormal(norm.runningMean!.shape, 0, 0.5, 'float32', 3));
      norm.runningVar!.assign(tf.randomUniform(norm.runningVar!.shape, 0.5, 2, 'float32', 4));
    }
  });
}

describe('ONNX export of nn modules (checked with onnxruntime-node)', function () {
  this.timeout(120000);

  it('Conv2d: padding, stride, dilation, groups, depthwise, no bias, non-square kernels and strides', async () => {
    const cases: [number, number, nn.Pair, nn.Conv2dOptions][] = [
      [3, 4, 3, { padding: 1 }],
      [3, 4, 3, { stride: 2, padding: 1 }],
      [3, 4, 3, { dilation: 2, padding: 2, bias: false }],
      [4, 6, 3, { groups: 2, padding: 1 }],
      [4, 8, 3, { groups: 4, padding: 1 }],
      [3, 2, [1, 3], { padding: [0, 1] }],
      [3, 2, [1, 3], { padding: 1 }],
      [3, 2, [3, 1], { stride: [1, 2], padding: [1, 0] }],
      [3, 2, [2, 3], { stride: [2, 1], padding: [1, 2], dilation: [2, 1] }],
    ];
    for (const [inC, outC, k, options] of cases) await expectSameAsForward(new nn.Conv2d(inC, outC, k, options), [2, 7, 9, inC]);
  });

  it('BatchNorm2d (eval, running statistics), GroupNorm and ConvModule', async () => {
    const bn = new nn.BatchNorm2d(5, { eps: 1e-3 });
    randomizeNorm(bn);
    await expectSameAsForward(bn, [2, 4, 3, 5]);
    const gn = new nn.GroupNorm(2, 6);
    randomizeNorm(gn);
    await expectSameAsForward(gn, [2, 5, 4, 6], 1e-4);
    const block = new nn.ConvModule(3, 4, 3, { padding: 1, norm_cfg: { type: 'BN' }, act_cfg: { type: 'LeakyReLU', negative_slope: 0.2 } });
    randomizeNorm(block.norm as nn.BatchNorm2d);
    await expectSameAsForward(block, [1, 6, 5, 3]);
  });

  it('activations, Dropout2d (eval) and Sequential', async () => {
    for (const act of [new nn.ReLU(), new nn.ReLU6(), new nn.LeakyReLU(0.1), new nn.Sigmoid(), new nn.Tanh()]) {
      await expectSameAsForward(new nn.Sequential(new nn.Conv2d(2, 3, 1), act, new nn.Dropout2d(0.5)), [1, 3, 4, 2]);
    }
  });

  it('MaxPool2d and AvgPool2d (count_include_pad) with padding', async () => {
    await expectSameAsForward(new nn.MaxPool2d(3, 2, 1), [2, 9, 8, 3]);
    await expectSameAsForward(new nn.MaxPool2d(2), [1, 8, 6, 2]);
    await expectSameAsForward(new nn.AvgPool2d(3, 2, 1), [2, 9, 8, 3]);
    await expectSameAsForward(new nn.AvgPool2d([2, 3], [2, 1], [1, 0]), [1, 7, 8, 2]);
  });

  it("AdaptiveAvgPool2d: PyTorch's overlapping bins from a static size and computed at run time", async () => {
    await expectSameAsForward(new nn.AdaptiveAvgPool2d([3, 2]), [2, 7, 5, 3]);
    await expectSameAsForward(new nn.AdaptiveAvgPool2d([3, 2]), [1, 6, 4, 2]);
    await expectSameAsForward(new nn.AdaptiveAvgPool2d(6), [1, 4, 9, 2]);
    await expectSameAsForward(new nn.AdaptiveAvgPool2d(1), [2, 5, 3, 4]);
  });

  it('Upsample: bilinear with and without align_corners, legacy nearest, by scale and by size', async () => {
    await expectSameAsForward(new nn.Upsample({ scale_factor: 2, mode: 'bilinear' }), [1, 3, 5, 2]);
    await expectSameAsForward(new nn.Upsample({ scale_factor: 2, mode: 'bilinear', align_corners: true }), [1, 3, 5, 2]);
    await expectSameAsForward(new nn.Upsample({ scale_factor: 1.5, mode: 'bilinear' }), [1, 4, 6, 2]);
    await expectSameAsForward(new nn.Upsample({ size: [4, 3], mode: 'bilinear' }), [1, 9, 7, 2]);
    await expectSameAsForward(new nn.Upsample({ size: [4, 3], mode: 'bilinear', align_corners: true }), [1, 9, 7, 2]);
    await expectSameAsForward(new nn.Upsample({ scale_factor: 3, mode: 'nearest' }), [1, 2, 3, 2]);
    await expectSameAsForward(new nn.Upsample({ size: [5, 7], mode: 'nearest' }), [1, 3, 4, 2]);
  });

  it('writes opset 13 with state-dict names for initializers and module paths for nodes', async () => {
    const model = new nn.Sequential(new nn.ConvModule(3, 4, 3, { padding: 1, norm_cfg: { type: 'BN' } }), new nn.Conv2d(4, 2, 1)).eval();
    const { bytes } = await buildOnnxModel(model, { inputs: [{ name: 'x', shape: ['n', 3, 'h', 'w'] }], build: (ctx, x) => ctx.call(model, x), outputs: [{ name: 'y' }], metadata: { note: 'hello' } });
    const proto = decodeOnnxModel(bytes) as {
      opset_import: { version: number }[];
      graph: { node: { name: string; op_type: string }[]; initializer: { name: string; dims: number[] }[]; input: { name: string }[]; output: { name: string }[] };
      metadata_props: { key: string; value: string }[];
    };
    expect(ONNX_OPSET).to.be.at.least(13);
    expect(proto.opset_import.map((o) => o.version)).to.deep.equal([ONNX_OPSET]);
    const weights = new Map(proto.graph.initializer.map((t) => [t.name, t.dims]));
    for (const [name] of model.stateDict()) expect(weights.has(name), name).to.equal(!name.endsWith('num_batches_tracked'));
    expect(weights.get('0.conv.weight')).to.deep.equal([4, 3, 3, 3]);
    expect(weights.get('0.bn.running_var')).to.deep.equal([4]);
    expect(proto.graph.node.map((n) => `${n.name}:${n.op_type}`).slice(0, 4)).to.deep.equal(['0.conv/Conv:Conv', '0.bn/BatchNormalization:BatchNormalization', '0.activate/Relu:Relu', '1/Conv:Conv']);
    expect(proto.graph.input.map((i) => i.name)).to.deep.equal(['x']);
    expect(proto.graph.output.map((o) => o.name)).to.deep.equal(['y']);
    expect(proto.metadata_props).to.deep.equal([{ key: 'note', value: 'hello' }]);
    model.dispose();
  });

  it('a module without exportOnnx is one error naming its path and class; so is a module that cannot export its state', async () => {
    class Squash extends nn.Module {
      override forward(x: tf.Tensor4D): tf.Tensor4D {
        return tf.tanh(x);
      }
    }
    const model = new nn.Sequential(new nn.Conv2d(3, 3, 1), new nn.Sequential(new nn.ReLU(), new Squash()));
    const build = (ctx: OnnxExportContext, x: OnnxValue) => ctx.call(model, x);
    const before = tf.memory().numTensors;
    const error = await buildOnnxModel(model, { inputs: [{ name: 'x', shape: [1, 3, 4, 4] }], build, outputs: [{ name: 'y' }] }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(SegkitError);
    expect((error as Error).message).to.equal(
      "export onnx: module '1.1' (Squash) has no ONNX export: give its class an exportOnnx(ctx, ...inputs) method that emits its nodes (see \"Export\" in the README)",
    );
    expect(tf.memory().numTensors).to.equal(before);
    const bn = new nn.BatchNorm2d(3, { trackRunningStats: false });
    const trained = new nn.Sequential(new nn.Conv2d(3, 3, 1), bn).eval();
    const message = await buildOnnxModel(trained, { inputs: [{ name: 'x', shape: [1, 3, 4, 4] }], build: (ctx, x) => ctx.call(trained, x), outputs: [{ name: 'y' }] }).catch((e: Error) => e.message);
    expect(message).to.equal("export onnx: module '1' (BatchNorm2d) has no running statistics (track_running_stats=False normalises with batch statistics at inference)");
    model.dispose();
    trained.dispose();
  });
});
