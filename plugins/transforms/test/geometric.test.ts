import { expect } from 'chai';
import { SeededRandom, type NdArray } from '@segkit/core';
import { randomCropBox, rescaleSize, resizeBilinear, resizeNearest } from '../src';
import { build, errorOf, image, labels, noRandom, rowsOf, scripted, withSeg } from './helpers';

describe('Resize', () => {
  it('bilinear matches OpenCV INTER_LINEAR (half-pixel centres, clamped edges) on a 2×2 → 4×4 example', () => {
    const out = resizeBilinear({ data: Float32Array.from([0, 10, 20, 30]), shape: [2, 2] }, 4, 4);
    expect(rowsOf(out)).to.deep.equal([
      [0, 2.5, 7.5, 10],
      [5, 7.5, 12.5, 15],
      [15, 17.5, 22.5, 25],
      [20, 22.5, 27.5, 30],
    ]);
  });

  it('labels use nearest: source index floor(x · src/dst)', () => {
    expect(rowsOf(resizeNearest(labels([[1, 2], [3, 4]]), 4, 4))).to.deep.equal([
      [1, 1, 2, 2],
      [1, 1, 2, 2],
      [3, 3, 4, 4],
      [3, 3, 4, 4],
    ]);
    expect(rowsOf(resizeNearest(labels([[5, 6, 7, 8]]), 1, 3))).to.deep.equal([[5, 6, 7]]);
  });

  it('keep_ratio size: f = min(long/max(h,w), short/min(h,w)), sides int(x·f + 0.5)', () => {
    expect(rescaleSize(1024, 2048, [2048, 1024])).to.deep.equal({ newH: 1024, newW: 2048 });
    expect(rescaleSize(584, 565, [584, 565])).to.deep.equal({ newH: 584, newW: 565 });
    // 584×565 to (1000, 500): f = min(1000/584, 500/565) = 0.88496 → (500, 516.8 → 517)
    expect(rescaleSize(584, 565, [1000, 500])).to.deep.equal({ newH: 517, newW: 500 });
  });

  it('ratio_range: r = 0.5 + u·1.5, scale = (int(w·r), int(h·r)), image and labels resized together', async () => {
    const resize = await build({ type: 'Resize', img_scale: [40, 20], ratio_range: [0.5, 2.0] });
    const seg = labels(Array.from({ length: 10 }, (_, y) => Array.from({ length: 20 }, (_, x) => (x < 10 ? 1 : 2) + (y < 5 ? 0 : 2))));
    const results = await resize.apply(withSeg(image(10, 20, () => 100), seg), scripted([0.5]));
    // r = 1.25 → scale (50, 25); f = min(50/20, 25/10) = 2.5 → 25 × 50
    expect(results.scale).to.deep.equal([50, 25]);
    expect(results.img!.shape).to.deep.equal([25, 50, 3]);
    expect(results.gt_semantic_seg!.shape).to.deep.equal([25, 50]);
    expect(results.scale_factor).to.deep.equal([2.5, 2.5, 2.5, 2.5]);
    expect(results.img_shape).to.deep.equal([25, 50, 3]);
    expect(new Set(results.gt_semantic_seg!.data)).to.deep.equal(new Set([1, 2, 3, 4]));
    expect(Array.from(results.img!.data).every((v) => v === 100)).to.equal(true);
  });

  it("multiscale_mode 'range' draws long and short edges; 'value' picks one scale; keep_ratio false resizes to (w, h)", async () => {
    const range = await build({ type: 'Resize', img_scale: [[100, 50], [200, 80]], multiscale_mode: 'range' });
    // long: randint(100, 201) at u=0.5 → 150; short: randint(50, 81) at u=0.5 → 65
    expect((await range.apply(withSeg(image(10, 20, () => 0)), scripted([0.5, 0.5]))).scale).to.deep.equal([150, 65]);
    const value = await build({ type: 'Resize', img_scale: [[100, 50], [200, 80]], multiscale_mode: 'value' });
    const picked = await value.apply(withSeg(image(10, 20, () => 0)), scripted([0.7]));
    expect(picked.scale).to.deep.equal([200, 80]);
    expect(picked.scale_idx).to.equal(1);
    const stretch = await build({ type: 'Resize', img_scale: [30, 20], keep_ratio: false });
    expect((await stretch.apply(withSeg(image(10, 20, () => 0)), noRandom)).img!.shape).to.deep.equal([20, 30, 3]);
  });

  it('uses a test-time `scale` from MultiScaleFlipAug without drawing; no scale at all is a clear error', async () => {
    const resize = await build({ type: 'Resize', keep_ratio: true });
    const results = await resize.apply({ ...withSeg(image(10, 20, () => 0)), scale: [40, 20] }, noRandom);
    expect(results.img!.shape).to.deep.equal([20, 40, 3]);
    expect(await errorOf(() => resize.apply(withSeg(image(10, 20, () => 0)), noRandom))).to.contain('Resize: img_scale is null');
  });

  it('unknown options are rejected by the schema', async () => {
    expect(await errorOf(() => build({ type: 'Resize', img_scale: [10, 10], ratio_ranges: [0.5, 2] }))).to.contain("pipeline.0.ratio_ranges: unknown option of Resize (did you mean 'ratio_range'?)");
  });
});

describe('RandomCrop', () => {
  const cropBoxes = (height: number, width: number, crop: [number, number], n: number) => {
    const random = SeededRandom.fromSeed(7);
    return Array.from({ length: n }, () => randomCropBox(height, width, crop, random));
  };

  it('offsets are uniform integers in [0, H−h] × [0, W−w], both ends reached', () => {
    const boxes = cropBoxes(10, 12, [4, 5], 400);
    const ys = boxes.map((b) => b[0]);
    const xs = boxes.map((b) => b[2]);
    expect(Math.min(...ys)).to.equal(0);
    expect(Math.max(...ys)).to.equal(6);
    expect(Math.min(...xs)).to.equal(0);
    expect(Math.max(...xs)).to.equal(7);
    expect(boxes.every(([y1, y2, x1, x2]) => y2 - y1 === 4 && x2 - x1 === 5 && Number.isInteger(y1) && Number.isInteger(x1))).to.equal(true);
  });

  it('crops image and labels at the drawn offset (u → floor(u·(margin+1)))', async () => {
    const crop = await build({ type: 'RandomCrop', crop_size: [4, 5] });
    const seg = labels(Array.from({ length: 10 }, (_, y) => Array.from({ length: 12 }, (_, x) => y * 12 + x)));
    const results = await crop.apply(withSeg(image(10, 12, (y, x) => y * 12 + x), seg), scripted([0.999, 0.999]));
    // offsets (6, 7): rows 6..9, columns 7..11
    expect(rowsOf(results.gt_semantic_seg!)).to.deep.equal([6, 7, 8, 9].map((y) => [7, 8, 9, 10, 11].map((x) => y * 12 + x)));
    expect(results.img!.shape).to.deep.equal([4, 5, 3]);
    expect(results.img!.data[0]).to.equal(6 * 12 + 7);
    expect(results.img_shape).to.deep.equal([4, 5, 3]);
  });

  it('an image smaller than the crop is kept whole (Pad grows it later)', async () => {
    const crop = await build({ type: 'RandomCrop', crop_size: [4, 4] });
    const results = await crop.apply(withSeg(image(3, 2, (y, x, c) => y * 20 + x * 10 + c), labels([[1, 2], [3, 4], [5, 6]])), scripted([0.3, 0.3]));
    expect(results.img!.shape).to.deep.equal([3, 2, 3]);
    expect(Array.from(results.img!.data)).to.deep.equal([0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52]);
    expect(rowsOf(results.gt_semantic_seg!)).to.deep.equal([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(results.img_shape).to.deep.equal([3, 2, 3]);
  });

  // 8×8 labels: the top-left 4×4 block is half class 0, half class 1 (with some 255); the rest is class 0.
  const mixed = labels(Array.from({ length: 8 }, (_, y) => Array.from({ length: 8 }, (_, x) => (y < 4 && x < 4 ? (x < 2 ? 1 : y === 0 ? 255 : 0) : 0))));

  it('cat_max_ratio rejects a one-class crop and accepts the next balanced one', async () => {
    const crop = await build({ type: 'RandomCrop', crop_size: [4, 4], cat_max_ratio: 0.75 });
    const random = scripted([0.99, 0.99, 0, 0]);
    const results = await crop.apply(withSeg(image(8, 8, () => 0), mixed), random);
    expect(random.taken).to.equal(4);
    // accepted crop at (0, 0): class 1 has 8 pixels, class 0 has 6 (2 are 255, excluded) → 8/14 < 0.75
    expect(rowsOf(results.gt_semantic_seg!)[0]).to.deep.equal([1, 1, 255, 255]);
  });

  it('after 10 rejections the 11th draw is used unchecked; ignore_index does not count as a class', async () => {
    const crop = await build({ type: 'RandomCrop', crop_size: [4, 4], cat_max_ratio: 0.75 });
    const onlyZeroAndIgnore = labels(Array.from({ length: 8 }, (_, y) => Array.from({ length: 8 }, (_, x) => ((x + y) % 2 ? 255 : 0))));
    const random = scripted(Array(22).fill(0.5));
    const results = await crop.apply(withSeg(image(8, 8, () => 0), onlyZeroAndIgnore), random);
    expect(random.taken).to.equal(22);
    expect(results.gt_semantic_seg!.shape).to.deep.equal([4, 4]);
  });

  it('a crop with the largest class share at or above cat_max_ratio is rejected', async () => {
    const crop = await build({ type: 'RandomCrop', crop_size: [4, 4], cat_max_ratio: 0.5 });
    // at (0, 0) class 1 has 8 of 14 → 0.571 ≥ 0.5: rejected ten times, then the 11th draw is taken
    const random = scripted(Array(22).fill(0));
    await crop.apply(withSeg(image(8, 8, () => 0), mixed), random);
    expect(random.taken).to.equal(22);
  });
});

describe('RandomCrop at the cat_max_ratio limit', () => {
  it('a crop whose largest class share equals cat_max_ratio is re-drawn (MMSegmentation accepts only share < ratio)', async () => {
    const crop = await build({ type: 'RandomCrop', crop_size: [2, 2], cat_max_ratio: 0.75 });
    // columns 0-1 hold class 1 three times of 4 (share exactly 0.75); columns 2-3 hold 0, 1, 1, 0 (share 0.5)
    const seg = labels([
      [1, 1, 0, 1],
      [1, 0, 1, 0],
    ]);
    const random = scripted([0, 0, 0, 0.99]);
    const results = await crop.apply(withSeg(image(2, 4, () => 0), seg), random);
    expect(random.taken).to.equal(4); // first box (0, 0) rejected, second box (0, 2) accepted
    expect(rowsOf(results.gt_semantic_seg!)).to.deep.equal([
      [0, 1],
      [1, 0],
    ]);
  });
});

describe('RandomFlip', () => {
  it('flips image and labels together when u < prob, horizontally or vertically', async () => {
    const flip = await build({ type: 'RandomFlip', prob: 0.5 });
    const results = await flip.apply(withSeg(image(1, 3, (_, x, c) => x * 10 + c), labels([[1, 2, 3]])), scripted([0.4]));
    expect(results.flip).to.equal(true);
    expect(rowsOf(results.gt_semantic_seg!)).to.deep.equal([[3, 2, 1]]);
    expect(Array.from(results.img!.data)).to.deep.equal([20, 21, 22, 10, 11, 12, 0, 1, 2]);
    const kept = await flip.apply(withSeg(image(1, 3, () => 0), labels([[1, 2, 3]])), scripted([0.5]));
    expect(kept.flip).to.equal(false);
    expect(rowsOf(kept.gt_semantic_seg!)).to.deep.equal([[1, 2, 3]]);
    const vertical = await build({ type: 'RandomFlip', prob: 1, direction: 'vertical' });
    const v = await vertical.apply(withSeg(image(2, 1, () => 0), labels([[1], [2]])), scripted([0.99]));
    expect(rowsOf(v.gt_semantic_seg!)).to.deep.equal([[2], [1]]);
  });

  it('prob null (test pipeline) never flips unless MultiScaleFlipAug set flip', async () => {
    const flip = await build({ type: 'RandomFlip' });
    expect((await flip.apply(withSeg(image(1, 2, () => 0)), noRandom)).flip).to.equal(false);
    const forced = await flip.apply({ ...withSeg(image(1, 2, (_, x) => x)), flip: true, flip_direction: 'horizontal' }, noRandom);
    expect(Array.from(forced.img!.data)).to.deep.equal([1, 1, 1, 0, 0, 0]);
  });
});

describe('Pad', () => {
  it('pads at the bottom/right: image with pad_val, labels with seg_pad_val', async () => {
    const pad = await build({ type: 'Pad', size: [3, 4], pad_val: 0, seg_pad_val: 255 });
    const img: NdArray<Float32Array> = { data: Float32Array.from(Array(2 * 3 * 3).fill(-1.5)), shape: [2, 3, 3] };
    const results = await pad.apply(withSeg(img, labels([[1, 2, 3], [4, 5, 6]])), noRandom);
    expect(rowsOf(results.gt_semantic_seg!)).to.deep.equal([
      [1, 2, 3, 255],
      [4, 5, 6, 255],
      [255, 255, 255, 255],
    ]);
    expect(results.img!.shape).to.deep.equal([3, 4, 3]);
    expect(results.img!.data).to.be.instanceOf(Float32Array);
    const pixel = (y: number, x: number) => Array.from(results.img!.data.subarray((y * 4 + x) * 3, (y * 4 + x) * 3 + 3));
    expect(pixel(1, 2)).to.deep.equal([-1.5, -1.5, -1.5]);
    expect(pixel(1, 3)).to.deep.equal([0, 0, 0]);
    expect(pixel(2, 0)).to.deep.equal([0, 0, 0]);
    expect(results.pad_shape).to.deep.equal([3, 4, 3]);
  });

  it('pads label maps with 255 when seg_pad_val is not given (and the image with 0)', async () => {
    const pad = await build({ type: 'Pad', size: [2, 3] });
    const results = await pad.apply(withSeg(image(1, 2, () => 9), labels([[1, 2]])), noRandom);
    expect(rowsOf(results.gt_semantic_seg!)).to.deep.equal([
      [1, 2, 255],
      [255, 255, 255],
    ]);
    expect(Array.from(results.img!.data)).to.deep.equal([9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('size_divisor pads to the next multiple; a pad value is used as given', async () => {
    const pad = await build({ type: 'Pad', size_divisor: 4, pad_val: 7, seg_pad_val: 9 });
    const results = await pad.apply(withSeg(image(5, 6, () => 1), labels(Array(5).fill([0, 0, 0, 0, 0, 0]))), noRandom);
    expect(results.img!.shape).to.deep.equal([8, 8, 3]);
    expect(results.img!.data[results.img!.data.length - 1]).to.equal(7);
    expect(results.gt_semantic_seg!.data[63]).to.equal(9);
    expect(results.gt_semantic_seg!.data[0]).to.equal(0);
  });

  it('needs exactly one of size and size_divisor; an image larger than size is an error', async () => {
    expect(await errorOf(() => build({ type: 'Pad' }))).to.contain('set exactly one of size (h, w) and size_divisor');
    const pad = await build({ type: 'Pad', size: [2, 2] });
    expect(await errorOf(() => pad.apply(withSeg(image(3, 3, () => 0)), noRandom))).to.contain('larger than the pad size 2×2');
  });
});
