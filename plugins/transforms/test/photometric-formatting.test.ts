import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { batchToTensors, collate, type NdArray, type PipelineResults } from '@segkit/core';
import { bgrToHsv, hsvToBgr } from '../src';
import { build, errorOf, image, labels, noRandom, scripted, withSeg } from './helpers';

const pixel = (b: number, g: number, r: number) => image(1, 1, (_, __, c) => [b, g, r][c]!);
const values = (array: NdArray) => Array.from(array.data);

describe('OpenCV-compatible HSV', () => {
  it('BGR→HSV with H in [0,180): red 0, green 60, blue 120; (50,100,200) → (10, 191, 200)', () => {
    const pixels = Uint8Array.from([0, 0, 255, 0, 255, 0, 255, 0, 0, 50, 100, 200]);
    bgrToHsv(pixels);
    expect(Array.from(pixels)).to.deep.equal([0, 255, 255, 60, 255, 255, 120, 255, 255, 10, 191, 200]);
  });

  it('HSV→BGR: H 10 S 255 V 255 → (0, 85, 255)', () => {
    const pixels = Uint8Array.from([10, 255, 255, 0, 0, 128]);
    hsvToBgr(pixels);
    expect(Array.from(pixels)).to.deep.equal([0, 85, 255, 128, 128, 128]);
  });
});

describe('PhotoMetricDistortion', () => {
  it('brightness then contrast (mode 1): x·α + β in float32, clipped, truncated', async () => {
    const distort = await build({ type: 'PhotoMetricDistortion' });
    // brightness coin 1, β = −32 + 0.75·64 = 16; mode 1; contrast coin 1, α = 0.5 + 0.25 = 0.75; saturation 0; hue 0
    const random = scripted([0.9, 0.75, 0.9, 0.9, 0.25, 0.1, 0.1]);
    const results = await distort.apply(withSeg(pixel(100, 200, 250)), random);
    // (100,200,250)+16 → (116,216,255 clipped) → ×0.75 → (87, 162, 191.25 → 191)
    expect(values(results.img!)).to.deep.equal([87, 162, 191]);
    expect(random.taken).to.equal(7);
  });

  it('contrast comes last in mode 0 (after a skipped brightness, saturation and hue)', async () => {
    const distort = await build({ type: 'PhotoMetricDistortion' });
    // brightness 0; mode 0; saturation 0; hue 0; contrast coin 1, α = 0.5 + 0.9 = 1.4
    const results = await distort.apply(withSeg(pixel(10, 100, 200)), scripted([0.1, 0.1, 0.1, 0.1, 0.9, 0.9]));
    expect(values(results.img!)).to.deep.equal([14, 140, 255]);
  });

  it('saturation scales S in HSV: (50,100,200) with α 0.5 → S 191→95 → (125, 150, 200)', async () => {
    const distort = await build({ type: 'PhotoMetricDistortion' });
    // brightness 0; mode 0; saturation coin 1, α = 0.5 + 0·1 = 0.5; hue 0; contrast 0
    const results = await distort.apply(withSeg(pixel(50, 100, 200)), scripted([0.1, 0.1, 0.9, 0, 0.1, 0.1]));
    // HSV (10, 95, 200): h = 1/3, s = 95/255, v = 200/255 → b = v(1−s) = 125.49, g = v(1−s(1−h)) = 150.33
    expect(values(results.img!)).to.deep.equal([125, 150, 200]);
  });

  it('hue shifts H by an integer in [−18, 17] modulo 180: red + 10 → (0, 85, 255)', async () => {
    const distort = await build({ type: 'PhotoMetricDistortion' });
    // hue delta = −18 + floor(u·36) with u = 28.5/36 → 10
    const results = await distort.apply(withSeg(pixel(0, 0, 255)), scripted([0.1, 0.1, 0.1, 0.9, 28.5 / 36, 0.1]));
    expect(values(results.img!)).to.deep.equal([0, 85, 255]);
    // −18 + floor(0.02·36) = −18: H 0 → 162 (mod 180) → a pink-red with more blue
    const wrapped = await distort.apply(withSeg(pixel(0, 0, 255)), scripted([0.1, 0.1, 0.1, 0.9, 0.02, 0.1]));
    // H 162 → h = 5.4: sector 5, frac 0.4 → b = v(1 − s·0.4) = 0.6·255 = 153, g = 0, r = 255
    expect(values(wrapped.img!)).to.deep.equal([153, 0, 255]);
  });

  it('refuses a normalized (float) image', async () => {
    const distort = await build({ type: 'PhotoMetricDistortion' });
    const message = await errorOf(() => distort.apply(withSeg({ data: new Float32Array(3), shape: [1, 1, 3] }), noRandom));
    expect(message).to.contain('put it before Normalize');
  });
});

describe('Normalize', () => {
  it('BGR (10,20,30) with to_rgb → ((30−123.675)/58.395, (20−116.28)/57.12, (10−103.53)/57.375)', async () => {
    const normalize = await build({ type: 'Normalize', mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true });
    const results = await normalize.apply(withSeg(pixel(10, 20, 30)), noRandom);
    expect(results.img!.data).to.be.instanceOf(Float32Array);
    const [r, g, b] = values(results.img!);
    expect(r).to.be.closeTo(-1.6041613, 1e-5);
    expect(g).to.be.closeTo(-1.6855742, 1e-5);
    expect(b).to.be.closeTo(-1.6301525, 1e-5);
    expect(results.img_norm_cfg).to.deep.equal({ mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true });
  });

  it('to_rgb false keeps the channel order', async () => {
    const normalize = await build({ type: 'Normalize', mean: [1, 2, 3], std: [2, 4, 8], to_rgb: false });
    expect(values((await normalize.apply(withSeg(pixel(11, 22, 35)), noRandom)).img!)).to.deep.equal([5, 5, 4]);
  });
});

describe('formatting: DefaultFormatBundle, Collect, ImageToTensor, MultiScaleFlipAug', () => {
  it('DefaultFormatBundle + Collect give float32 [H,W,3] images and int32 labels that collate into batch tensors', async () => {
    const bundle = await build({ type: 'DefaultFormatBundle' });
    const collect = await build({ type: 'Collect', keys: ['img', 'gt_semantic_seg'] });
    const sample = (v: number): Promise<PipelineResults> =>
      Promise.resolve(bundle.apply({ ...withSeg(image(2, 2, () => v), labels([[v, 1], [255, 0]])), filename: `f${v}` }, noRandom)).then((r) => collect.apply(r, noRandom));
    const [a, b] = await Promise.all([sample(3), sample(4)]);
    expect(a!.img!.data).to.be.instanceOf(Float32Array);
    expect(a!.gt_semantic_seg!.data).to.be.instanceOf(Int32Array);
    expect(a!.img_metas).to.deep.equal({ filename: 'f3', img_shape: [2, 2, 3] });
    const before = tf.memory().numTensors;
    const { images, labels: batchLabels } = batchToTensors(collate([a!, b!]));
    expect(images.shape).to.deep.equal([2, 2, 2, 3]);
    expect(images.dtype).to.equal('float32');
    expect(batchLabels!.dtype).to.equal('int32');
    expect(Array.from(await batchLabels!.data())).to.deep.equal([3, 1, 255, 0, 4, 1, 255, 0]);
    tf.dispose([images, batchLabels!]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('Collect names a missing key', async () => {
    const collect = await build({ type: 'Collect', keys: ['img', 'gt_semantic_seg'] });
    expect(await errorOf(() => collect.apply(withSeg(image(1, 1, () => 0)), noRandom))).to.contain("Collect: key 'gt_semantic_seg' is not in the results (add LoadAnnotations to the pipeline)");
  });

  it('MultiScaleFlipAug with one scale and flip false runs the inner transforms once at that scale', async () => {
    const aug = await build({
      type: 'MultiScaleFlipAug',
      img_scale: [40, 20],
      flip: false,
      transforms: [{ type: 'Resize', keep_ratio: true }, { type: 'RandomFlip' }, { type: 'ImageToTensor', keys: ['img'] }, { type: 'Collect', keys: ['img'] }],
    });
    const results = await aug.apply(withSeg(image(10, 10, () => 5)), noRandom);
    // scale (40, 20) with keep ratio on 10×10: f = min(40/10, 20/10) = 2 → 20×20
    expect(results.img!.shape).to.deep.equal([20, 20, 3]);
    expect(results.img!.data).to.be.instanceOf(Float32Array);
    expect(results.img_metas).to.include({ flip: false });
    expect(results.aug).to.equal(undefined);
  });

  it('MultiScaleFlipAug with img_ratios and flip runs every combination and keeps them in `aug`', async () => {
    const aug = await build({
      type: 'MultiScaleFlipAug',
      img_scale: [40, 20],
      img_ratios: [0.5, 1.0],
      flip: true,
      transforms: [{ type: 'Resize', keep_ratio: true }, { type: 'RandomFlip' }, { type: 'Collect', keys: ['img'] }],
    });
    const results = await aug.apply(withSeg(image(10, 10, () => 5)), noRandom);
    const runs = results.aug as PipelineResults[];
    expect(runs.map((r) => [r.img!.shape[0], (r.img_metas as { flip: boolean }).flip])).to.deep.equal([
      [10, false],
      [10, true],
      [20, false],
      [20, true],
    ]);
  });
});
