import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { DataLoader, SegkitError, writePng, type Dataset } from '@segkit/core';
import { CustomDataset, badLabelValues, checkDataset, describeBadValues, formatDatasetCheck, labelValueCounts } from '../src';
import { dataKernel, errorOf, fixtures, tempDir } from './helpers';

const load = [{ type: 'LoadImageFromFile' }, { type: 'LoadAnnotations' }];

async function build(cfg: Record<string, unknown>, at = 'data.train'): Promise<Dataset> {
  return (await dataKernel()).build('datasets', cfg, { path: at });
}

/** A grey image whose pixels are all `value`, written as an RGB PNG. */
function writeImage(file: string, height: number, width: number, value = 100): void {
  writePng(file, { data: new Uint8Array(height * width * 3).fill(value), shape: [height, width, 3] });
}

/** A single-channel label PNG from rows of values. */
function writeLabel(file: string, rows: number[][]): void {
  writePng(file, { data: Uint8Array.from(rows.flat()), shape: [rows.length, rows[0]!.length] });
}

/** 2 × 4 label rows: `values` repeated in reading order. */
const rows2x4 = (...values: number[]): number[][] => [0, 1].map((y) => [0, 1, 2, 3].map((x) => values[(y * 4 + x) % values.length]!));

describe('label checks: value counts', () => {
  it('counts every value in one pass: Uint8 and Uint16 through a histogram, other arrays through a map', () => {
    expect(labelValueCounts(Uint8Array.from([3, 0, 255, 3, 3]))).to.deep.equal([[0, 1], [3, 3], [255, 1]]);
    expect(labelValueCounts(Uint16Array.from([300, 65535, 300, 1]))).to.deep.equal([[1, 1], [300, 2], [65535, 1]]);
    expect(labelValueCounts(Int32Array.from([-1, 2, -1]))).to.deep.equal([[-1, 2], [2, 1]]);
  });

  it('bad values are those outside [0, C) that are not the ignore index; at most five are listed', () => {
    const counts = labelValueCounts(Uint8Array.from([0, 1, 2, 2, 7, 255]));
    expect(badLabelValues(counts, { numClasses: 2, ignoreIndex: 255 })).to.deep.equal([{ value: 2, pixels: 2 }, { value: 7, pixels: 1 }]);
    expect(badLabelValues(counts, { numClasses: 2, ignoreIndex: 7 })).to.deep.equal([{ value: 2, pixels: 2 }, { value: 255, pixels: 1 }]);
    expect(badLabelValues(labelValueCounts(Int32Array.from([-1, 0])), { numClasses: 2, ignoreIndex: 255 })).to.deep.equal([{ value: -1, pixels: 1 }]);
    const many = [2, 3, 4, 5, 6, 7, 8].map((value) => ({ value, pixels: value === 8 ? 1 : 10 }));
    expect(describeBadValues(many.slice(5))).to.equal('7 (10 pixels), 8 (1 pixel)');
    expect(describeBadValues(many)).to.equal('2 (10 pixels), 3 (10 pixels), 4 (10 pixels), 5 (10 pixels), 6 (10 pixels) and 2 more values');
  });
});

describe('label checks: every training sample, where its label is loaded', () => {
  let root: string;
  const dataset = (extra: Record<string, unknown> = {}) =>
    build({ type: 'CustomDataset', data_root: root, img_dir: 'img', ann_dir: 'ann', img_suffix: '.png', classes: ['background', 'thing'], pipeline: load, ...extra });

  before(async () => {
    root = tempDir();
    writeImage(path.join(root, 'img/a.png'), 2, 4);
    writeLabel(path.join(root, 'ann/a.png'), rows2x4(0, 1, 255, 0));
  });

  const replaceLabel = async (rows: number[][]) => writeLabel(path.join(root, 'ann/a.png'), rows);

  it('a good sample passes: classes 0 and 1, the ignore index 255', async () => {
    await replaceLabel(rows2x4(0, 1, 255, 0));
    const sample = await (await dataset()).get(0);
    expect(Array.from(sample.gt_semantic_seg!.data)).to.deep.equal([0, 1, 255, 0, 0, 1, 255, 0]);
  });

  it('a label map of another size than its image is an error naming both files, before RandomCrop would hide it', async () => {
    await replaceLabel([[0, 1, 0], [1, 0, 1]]);
    const cropping = await dataset({ pipeline: [...load, { type: 'RandomCrop', crop_size: [2, 2] }] });
    const error = await (cropping.get(0).catch((e: unknown) => e) as Promise<Error>);
    expect(error).to.be.instanceOf(SegkitError);
    expect(error.message).to.equal(
      `data.train: label map ${path.join(root, 'ann/a.png')} is 2×3 (h×w) but its image ${path.join(root, 'img/a.png')} is 2×4; a label map must have its image's size`,
    );
  });

  it('a value outside [0, num_classes) names the label file and the bad values with their pixel counts', async () => {
    await replaceLabel(rows2x4(0, 7, 7, 9, 1, 7, 0, 0));
    expect(await errorOf(async () => (await dataset()).get(0))).to.equal(
      `data.train: label map ${path.join(root, 'ann/a.png')} has values outside [0, 2) that are not the ignore index 255: 7 (3 pixels), 9 (1 pixel)`,
    );
  });

  it("the dataset's ignore_index is the value allowed besides the classes (ignore_index 7: 7 passes, 255 does not)", async () => {
    await replaceLabel(rows2x4(0, 1, 7, 7));
    expect(Array.from((await (await dataset({ ignore_index: 7 })).get(0)).gt_semantic_seg!.data)).to.deep.equal([0, 1, 7, 7, 0, 1, 7, 7]);
    await replaceLabel(rows2x4(0, 1, 7, 255));
    expect(await errorOf(async () => (await dataset({ ignore_index: 7 })).get(0))).to.equal(
      `data.train: label map ${path.join(root, 'ann/a.png')} has values outside [0, 2) that are not the ignore index 7: 255 (2 pixels)`,
    );
  });

  it('values are checked after reduce_zero_label (0 → 255, k → k − 1), and a disagreement with the dataset option is pointed out', async () => {
    const reducing = { reduce_zero_label: true, pipeline: [{ type: 'LoadImageFromFile' }, { type: 'LoadAnnotations', reduce_zero_label: true }] };
    await replaceLabel(rows2x4(0, 1, 2, 255));
    // 0 → 255, 1 → 0, 2 → 1, 255 stays: all valid for 2 classes
    expect(Array.from((await (await dataset(reducing)).get(0)).gt_semantic_seg!.data)).to.deep.equal([255, 0, 1, 255, 255, 0, 1, 255]);
    await replaceLabel(rows2x4(0, 1, 2, 3));
    expect(await errorOf(async () => (await dataset(reducing)).get(0))).to.equal(
      `data.train: label map ${path.join(root, 'ann/a.png')} has values outside [0, 2) that are not the ignore index 255 (after reduce_zero_label: 0 → 255, k → k − 1): 2 (2 pixels)`,
    );
    // the dataset reduces (evaluation does), the training pipeline does not: 2 stays 2
    await replaceLabel(rows2x4(1, 2));
    expect(await errorOf(async () => (await dataset({ reduce_zero_label: true })).get(0))).to.equal(
      `data.train: label map ${path.join(root, 'ann/a.png')} has values outside [0, 2) that are not the ignore index 255: 2 (4 pixels); note that the dataset has reduce_zero_label: true but the pipeline's LoadAnnotations has reduce_zero_label: false`,
    );
  });

  it('a class subset maps the other classes to 255 before the check (Cityscapes, classes car and road)', async () => {
    const cityscapes = await build({
      type: 'CityscapesDataset',
      data_root: path.join(fixtures, 'pseudo_cityscapes_dataset'),
      img_dir: 'leftImg8bit/val',
      ann_dir: 'gtFine/val',
      classes: ['car', 'road'],
      pipeline: load,
    });
    expect((await cityscapes.get(0)).gt_semantic_seg!.shape).to.deep.equal([128, 256]);
  });

  it('the error reaches the trainer from a loader worker thread as the same SegkitError', async function () {
    this.timeout(30000);
    await replaceLabel(rows2x4(0, 5));
    const cfg = { type: 'CustomDataset', data_root: root, img_dir: 'img', ann_dir: 'ann', img_suffix: '.png', classes: ['background', 'thing'], pipeline: load };
    const loader = DataLoader.fromConfig(await dataKernel(), cfg, { batchSize: 1, workers: 1, plugins: ['@segkit/datasets', '@segkit/transforms'], path: 'data.train' });
    try {
      const error = (await loader.next().catch((e: unknown) => e)) as Error;
      expect(error).to.be.instanceOf(SegkitError);
      expect(error.message).to.equal(`data.train: label map ${path.join(root, 'ann/a.png')} has values outside [0, 2) that are not the ignore index 255: 5 (4 pixels)`);
    } finally {
      await loader.close();
    }
  });
});

describe('checkDataset', () => {
  /** Five samples: one good, then a corrupt image, a label of another size, a bad label value, a corrupt label. */
  let root: string;
  let files: (name: string) => { image: string; label: string };
  before(async () => {
    root = tempDir();
    files = (name) => ({ image: path.join(root, 'img', `${name}.png`), label: path.join(root, 'ann', `${name}.png`) });
    writeImage(files('1-good').image, 2, 4);
    writeLabel(files('1-good').label, rows2x4(0, 1, 1, 255));
    fs.mkdirSync(path.join(root, 'img'), { recursive: true });
    fs.writeFileSync(files('2-corrupt-image').image, Buffer.from('not a png at all'));
    writeLabel(files('2-corrupt-image').label, rows2x4(0));
    writeImage(files('3-size').image, 2, 4);
    writeLabel(files('3-size').label, [[1, 1], [1, 1]]);
    writeImage(files('4-value').image, 2, 4);
    writeLabel(files('4-value').label, rows2x4(0, 1, 3, 3));
    writeImage(files('5-corrupt-label').image, 2, 4);
    writeLabel(files('5-corrupt-label').label, rows2x4(1));
    const label = fs.readFileSync(files('5-corrupt-label').label);
    fs.writeFileSync(files('5-corrupt-label').label, label.subarray(0, label.length - 20)); // cut inside the data
  });

  const planted = () => build({ type: 'CustomDataset', data_root: root, img_dir: 'img', ann_dir: 'ann', img_suffix: '.png', classes: ['background', 'thing'], pipeline: load });

  it('finds every planted problem, names the files, counts pixels per class and reports progress', async () => {
    const progress: [number, number, string][] = [];
    const summary = await checkDataset(await planted(), { onProgress: (done, total, image) => progress.push([done, total, image]) });
    expect(summary.samples).to.equal(5);
    expect(summary.labelled).to.equal(5);
    expect(summary.problemCounts).to.deep.equal({ 'image-unreadable': 1, 'label-unreadable': 1, 'size-mismatch': 1, 'label-values': 1 });
    expect([summary.totalProblems, summary.samplesWithProblems, summary.ok]).to.deep.equal([4, 4, false]);
    expect(summary.problems.map((p) => [p.kind, p.index, p.image, p.label])).to.deep.equal([
      ['image-unreadable', 1, files('2-corrupt-image').image, files('2-corrupt-image').label],
      ['size-mismatch', 2, files('3-size').image, files('3-size').label],
      ['label-values', 3, files('4-value').image, files('4-value').label],
      ['label-unreadable', 4, files('5-corrupt-label').image, files('5-corrupt-label').label],
    ]);
    expect(summary.problems[0]!.message).to.match(new RegExp(`^LoadImageFromFile: cannot decode ${files('2-corrupt-image').image}: `));
    expect(summary.problems[1]!.message).to.equal(
      `label map ${files('3-size').label} is 2×2 (h×w) but its image ${files('3-size').image} is 2×4; a label map must have its image's size`,
    );
    expect(summary.problems[2]!.message).to.equal(`label map ${files('4-value').label} has values outside [0, 2) that are not the ignore index 255: 3 (4 pixels)`);
    expect(summary.problems[3]!.message).to.match(new RegExp(`^LoadAnnotations: cannot decode label map ${files('5-corrupt-label').label}: `));
    // readable labels: good (0 ×2, 1 ×4, 255 ×2), corrupt-image's (0 ×8), size's (1 ×4), value's (0 ×2, 1 ×2, 3 ×4)
    expect(summary.classPixels).to.deep.equal([12, 10]);
    expect(summary.ignoredPixels).to.equal(2);
    expect(summary.badValuePixels).to.deep.equal({ 3: 4 });
    expect(summary.valuePixels).to.deep.equal({ 0: 12, 1: 10, 3: 4, 255: 2 });
    expect(progress.map(([done, total]) => [done, total])).to.deep.equal([1, 2, 3, 4, 5].map((done) => [done, 5]));
    expect(progress.map(([, , image]) => image).sort()).to.deep.equal(['1-good', '2-corrupt-image', '3-size', '4-value', '5-corrupt-label'].map((n) => files(n).image));
  });

  it('keeps the first maxProblems problems, counts them all, and scans a RepeatDataset file by file', async () => {
    const repeated = await build({
      type: 'RepeatDataset',
      times: 1000,
      dataset: { type: 'CustomDataset', data_root: root, img_dir: 'img', ann_dir: 'ann', img_suffix: '.png', classes: ['background', 'thing'], pipeline: load },
    });
    const summary = await checkDataset(repeated, { maxProblems: 2, concurrency: 1 });
    expect(summary.samples).to.equal(5);
    expect(summary.problems.map((p) => p.index)).to.deep.equal([1, 2]);
    expect(summary.totalProblems).to.equal(4);
  });

  it('formats a summary table, the problems and the pixels per class', async () => {
    const text = formatDatasetCheck(await checkDataset(await planted()));
    const lines = text.split('\n');
    expect(lines[0]).to.equal('checked 5 samples (all with label maps); 2 classes, ignore index 255');
    expect(text).to.include('| label size differs from image |    1    |');
    expect(text).to.include(`  [3] label values out of range: label map ${files('4-value').label} has values outside [0, 2) that are not the ignore index 255: 3 (4 pixels)`);
    expect(text).to.include('|   0   |   background   |   12   | 42.86% |');
    expect(text).to.include('|   3   | (out of range) |   4    | 14.29% |');
    expect(lines[lines.length - 1]).to.equal('4 problems in 4 samples');
  });

  it("MMSegmentation's pseudo dataset (tests/data, copied): clean as is; with 2 classes and one label of the wrong size, both found", async () => {
    const copy = tempDir();
    fs.cpSync(path.join(fixtures, 'pseudo_dataset'), copy, { recursive: true });
    const cfg = { type: 'CustomDataset', data_root: copy, img_dir: 'imgs', ann_dir: 'gts', img_suffix: '_img.jpg', seg_map_suffix: '_gt.png', split: 'splits/train.txt', pipeline: load };
    const clean = await checkDataset(await build({ ...cfg, classes: ['a', 'b', 'c', 'd'] }));
    expect(clean.ok).to.equal(true);
    expect(clean.samples).to.equal(4);
    // per-file histograms of 00000-00003: {0: 29578, 2: 3190}, {0: 20994, 1: 11774}, {0: 29870, 2: 2898}, {0: 23111, 3: 9657}
    expect(clean.classPixels).to.deep.equal([103553, 11774, 6088, 9657]);
    const reduced = await checkDataset(await build({ ...cfg, reduce_zero_label: true, pipeline: [{ type: 'LoadImageFromFile' }, { type: 'LoadAnnotations', reduce_zero_label: true }], classes: ['b', 'c', 'd'] }));
    expect([reduced.ok, reduced.reduceZeroLabel, reduced.ignoredPixels]).to.deep.equal([true, true, 103553]);
    expect(reduced.classPixels).to.deep.equal([11774, 6088, 9657]);
    // labels are checked as training loads them: here the pipeline does not reduce although the dataset does
    const mismatched = await checkDataset(await build({ ...cfg, reduce_zero_label: true, classes: ['b', 'c', 'd'] }));
    expect([mismatched.reduceZeroLabel, mismatched.badValuePixels]).to.deep.equal([false, { 3: 9657 }]);
    expect(mismatched.problems.map((p) => p.message)).to.deep.equal([
      `label map ${path.join(copy, 'gts/00003_gt.png')} has values outside [0, 3) that are not the ignore index 255: 3 (9657 pixels); note that the dataset has reduce_zero_label: true but the pipeline's LoadAnnotations has reduce_zero_label: false`,
    ]);

    writeLabel(path.join(copy, 'gts/00001_gt.png'), rows2x4(0, 1));
    const planted = await checkDataset(await build({ ...cfg, classes: ['a', 'b'] }));
    expect(planted.problemCounts).to.deep.equal({ 'image-unreadable': 0, 'label-unreadable': 0, 'size-mismatch': 1, 'label-values': 3 });
    expect(planted.problems.map((p) => `${p.kind} ${path.basename(p.label!)}`)).to.deep.equal([
      'label-values 00000_gt.png',
      'size-mismatch 00001_gt.png',
      'label-values 00002_gt.png',
      'label-values 00003_gt.png',
    ]);
    expect(planted.problems[0]!.message).to.equal(`label map ${path.join(copy, 'gts/00000_gt.png')} has values outside [0, 2) that are not the ignore index 255: 2 (3190 pixels)`);
    expect(planted.badValuePixels).to.deep.equal({ 2: 3190 + 2898, 3: 9657 });
  });

  it('a dataset that is not file-based is a clear error', async () => {
    const fake = { length: 1, classes: ['a'], palette: [[0, 0, 0]], ignoreIndex: 255, get: async () => ({}), getGroundTruth: async () => ({ data: new Uint8Array(1), shape: [1, 1] }) };
    expect(await errorOf(() => checkDataset(fake))).to.equal('checkDataset: expected a CustomDataset-based dataset (images and label maps in folders), got Object');
  });

  it('CustomDataset without classes: values are counted, not checked', async () => {
    const summary = await checkDataset(await build({ type: 'CustomDataset', data_root: root, img_dir: 'img', ann_dir: 'ann', img_suffix: '.png', pipeline: load }) as CustomDataset);
    expect(summary.problemCounts['label-values']).to.equal(0);
    expect(summary.valuePixels).to.deep.equal({ 0: 12, 1: 10, 3: 4, 255: 2 });
    expect(formatDatasetCheck(summary).split('\n')[0]).to.equal('checked 5 samples (all with label maps); no class names (values not checked), ignore index 255');
  });
});
