import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { DataLoader, loadConfig, type Batch, type Dataset } from '@segkit/core';
import { CustomDataset, RepeatDataset, synthDrive } from '../src';
import { configsDir, dataKernel, errorOf, fixtures, histogram, tempDir } from './helpers';

const load = [{ type: 'LoadImageFromFile' }, { type: 'LoadAnnotations' }];
const cityscapesRoot = path.join(fixtures, 'pseudo_cityscapes_dataset');

async function build(cfg: Record<string, unknown>, at = 'data.train'): Promise<Dataset> {
  return (await dataKernel()).build('datasets', cfg, { path: at });
}

describe('CityscapesDataset', () => {
  it("loads MMSegmentation's pseudo Cityscapes frame: 1 sample, trainId labels with their counts", async () => {
    const dataset = (await build({ type: 'CityscapesDataset', data_root: cityscapesRoot, img_dir: 'leftImg8bit/val', ann_dir: 'gtFine/val', pipeline: load })) as CustomDataset;
    expect(dataset.length).to.equal(1);
    expect(dataset.imgInfos).to.deep.equal([
      { filename: 'frankfurt/frankfurt_000000_000294_leftImg8bit.png', ann: { seg_map: 'frankfurt/frankfurt_000000_000294_gtFine_labelTrainIds.png' } },
    ]);
    expect(dataset.classes).to.have.length(19);
    expect(dataset.classes[18]).to.equal('bicycle');
    expect(dataset.palette[13]).to.deep.equal([0, 0, 142]);
    const sample = await dataset.get(0);
    expect(sample.img!.shape).to.deep.equal([128, 256, 3]);
    expect(sample.filename).to.equal(path.join(cityscapesRoot, 'leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png'));
    expect(histogram(sample.gt_semantic_seg!.data)).to.deep.equal({ 0: 9737, 1: 2634, 2: 12748, 4: 43, 5: 400, 7: 190, 8: 663, 10: 579, 11: 106, 13: 1799, 255: 3869 });
    const gt = await dataset.getGroundTruth(0);
    expect(histogram(gt.data)).to.deep.equal(histogram(sample.gt_semantic_seg!.data));
  });

  it('a subset of classes builds a label_map (old → new, others 255) and the matching palette', async () => {
    const dataset = (await build({ type: 'CityscapesDataset', data_root: cityscapesRoot, img_dir: 'leftImg8bit/val', ann_dir: 'gtFine/val', classes: ['car', 'road'], pipeline: load })) as CustomDataset;
    expect(dataset.classes).to.deep.equal(['car', 'road']);
    expect(dataset.palette).to.deep.equal([[0, 0, 142], [128, 64, 128]]);
    expect(dataset.labelMap).to.include({ 0: 1, 13: 0, 1: 255, 18: 255 });
    const sample = await dataset.get(0);
    expect(histogram(sample.gt_semantic_seg!.data)).to.deep.equal({ 0: 1799, 1: 9737, 255: 32768 - 1799 - 9737 });
    expect(await errorOf(() => build({ type: 'CityscapesDataset', data_root: cityscapesRoot, img_dir: 'leftImg8bit/val', classes: ['car', 'cat'] }))).to.contain(
      "data.train.classes: 'cat' not among CityscapesDataset's classes",
    );
  });
});

describe('CustomDataset', () => {
  const pseudo = path.join(fixtures, 'pseudo_dataset');
  const base = { type: 'CustomDataset', data_root: pseudo, img_dir: 'imgs', ann_dir: 'gts', img_suffix: '_img.jpg', seg_map_suffix: '_gt.png' };

  it('reads the stems of a split file; palette labels come back as indices', async () => {
    const dataset = (await build({ ...base, split: 'splits/train.txt', classes: ['a', 'b', 'c', 'd'], pipeline: load })) as CustomDataset;
    expect(dataset.length).to.equal(4);
    expect(dataset.imgInfos[3]).to.deep.equal({ filename: '00003_img.jpg', ann: { seg_map: '00003_gt.png' } });
    const sample = await dataset.get(0);
    expect(sample.img!.shape).to.deep.equal([128, 256, 3]);
    expect(histogram(sample.gt_semantic_seg!.data)).to.deep.equal({ 0: 29578, 2: 3190 });
    expect(dataset.labelMap).to.equal(null); // CustomDataset has no fixed classes to subset
    expect(dataset.palette).to.have.length(4);
    const val = await build({ ...base, split: 'splits/val.txt' });
    expect(val.length).to.equal(1);
  });

  it('without a split: a recursive scan sorted by relative path', async () => {
    const root = tempDir();
    for (const file of ['b/2_img.jpg', 'a/9_img.jpg', 'a/10_img.jpg', 'c.txt', '.hidden_img.jpg']) {
      fs.mkdirSync(path.dirname(path.join(root, 'img', file)), { recursive: true });
      fs.writeFileSync(path.join(root, 'img', file), '');
    }
    const dataset = (await build({ type: 'CustomDataset', img_dir: path.join(root, 'img'), img_suffix: '_img.jpg' })) as CustomDataset;
    expect(dataset.imgInfos.map((i) => i.filename)).to.deep.equal(['a/10_img.jpg', 'a/9_img.jpg', 'b/2_img.jpg']);
  });

  it('reduce_zero_label and ignore_index are the dataset options MMSegmentation has', async () => {
    const dataset = (await build({ ...base, split: 'splits/val.txt', reduce_zero_label: true, pipeline: [{ type: 'LoadImageFromFile' }, { type: 'LoadAnnotations', reduce_zero_label: true }] })) as CustomDataset;
    expect(dataset.reduceZeroLabel).to.equal(true);
    expect(dataset.ignoreIndex).to.equal(255);
    const sample = await dataset.get(0);
    const gt = await dataset.getGroundTruth(0);
    expect(Array.from(gt.data)).to.deep.equal(Array.from(sample.gt_semantic_seg!.data));
    expect(Object.keys(histogram(gt.data)).every((v) => Number(v) === 255 || Number(v) < 15)).to.equal(true);
  });

  it('a missing folder, an image without its label and an empty dataset are one error each, naming the path', async () => {
    expect(await errorOf(() => build({ ...base, img_dir: 'nope' }))).to.equal(`data.train.img_dir: image folder not found: ${path.join(pseudo, 'nope')}`);
    expect(await errorOf(() => build({ ...base, ann_dir: 'nope' }))).to.equal(`data.train.ann_dir: annotation folder not found: ${path.join(pseudo, 'nope')}`);
    const root = tempDir();
    fs.mkdirSync(path.join(root, 'img'));
    fs.mkdirSync(path.join(root, 'ann'));
    expect(await errorOf(() => build({ type: 'CustomDataset', data_root: root, img_dir: 'img', ann_dir: 'ann' }))).to.equal(
      `data.train.img_dir: no images ending in '.jpg' under ${path.join(root, 'img')} (check img_dir and img_suffix)`,
    );
    fs.writeFileSync(path.join(root, 'img', 'x.jpg'), '');
    expect(await errorOf(() => build({ type: 'CustomDataset', data_root: root, img_dir: 'img', ann_dir: 'ann' }))).to.equal(
      `data.train.ann_dir: 1 image(s) without a label map ending in '.png': ${path.join(root, 'img', 'x.jpg')} (expected ${path.join(root, 'ann', 'x.png')})`,
    );
    expect(await errorOf(() => build({ ...base, split: 'splits/none.txt' }))).to.equal(`data.train.split: split file not found: ${path.join(pseudo, 'splits/none.txt')}`);
  });
});

describe('DRIVEDataset and RepeatDataset', () => {
  let root: string;
  before(async () => {
    root = tempDir();
    await synthDrive({ out: root, count: 4, size: [64, 64], seed: 1 });
  });

  it('reads the DRIVE layout: <id>.png with <id>_manual1.png labels of 0/1', async () => {
    const train = (await build({ type: 'DRIVEDataset', data_root: root, img_dir: 'images/training', ann_dir: 'annotations/training', pipeline: load })) as CustomDataset;
    const val = await build({ type: 'DRIVEDataset', data_root: root, img_dir: 'images/validation', ann_dir: 'annotations/validation' });
    expect([train.length, val.length]).to.deep.equal([4, 2]);
    expect(train.imgInfos[0]).to.deep.equal({ filename: '03.png', ann: { seg_map: '03_manual1.png' } });
    expect(train.classes).to.deep.equal(['background', 'vessel']);
    expect(train.palette).to.deep.equal([[120, 120, 120], [6, 230, 230]]);
    const sample = await train.get(0);
    expect(sample.img!.shape).to.deep.equal([64, 64, 3]);
    expect(Object.keys(histogram(sample.gt_semantic_seg!.data))).to.deep.equal(['0', '1']);
    expect(await errorOf(() => build({ type: 'DRIVEDataset', data_root: root, img_dir: 'images/training', reduce_zero_label: true }))).to.contain(
      'data.train.reduce_zero_label: DRIVEDataset fixes reduce_zero_label to false',
    );
  });

  it('RepeatDataset: times × length samples, sample i is sample i mod n', async () => {
    const repeated = (await build({ type: 'RepeatDataset', times: 3, dataset: { type: 'DRIVEDataset', data_root: root, img_dir: 'images/training', ann_dir: 'annotations/training', pipeline: load } })) as RepeatDataset;
    expect(repeated.length).to.equal(12);
    expect(repeated.classes).to.deep.equal(['background', 'vessel']);
    expect((await repeated.get(9)).filename).to.equal((await repeated.dataset.get(1)).filename);
    expect(await errorOf(() => build({ type: 'RepeatDataset', times: 0, dataset: { type: 'DRIVEDataset', img_dir: root } }))).to.contain('data.train.times: expected a positive integer');
    expect(await errorOf(() => build({ type: 'RepeatDataset', times: 2, dataset: { type: 'DRIVEDataset', data_root: root, img_dir: 'nope' } }))).to.contain(
      'data.train.dataset.img_dir: image folder not found',
    );
  });

  it("configs/_base_/datasets/synthetic_drive.ts builds; its train pipeline yields 64×64 float32 crops with int32 0/1/255 labels", async function () {
    this.timeout(20000);
    const config = await loadConfig(path.join(configsDir, 'synthetic_drive.ts'), [`data.train.dataset.data_root=${root}`, `data.val.data_root=${root}`]);
    expect(config.plugins).to.deep.equal(['@segkit/datasets', '@segkit/transforms']);
    const data = config.data as { samples_per_gpu: number; train: unknown; val: unknown };
    expect(data.samples_per_gpu).to.equal(4);
    const train = await build(data.train as Record<string, unknown>);
    expect(train.length).to.equal(40000 * 4);
    const sample = await train.get(5);
    expect(sample.img!.shape).to.deep.equal([64, 64, 3]);
    expect(sample.img!.data).to.be.instanceOf(Float32Array);
    expect(sample.gt_semantic_seg!.data).to.be.instanceOf(Int32Array);
    expect(Object.keys(histogram(sample.gt_semantic_seg!.data)).every((v) => ['0', '1', '255'].includes(v))).to.equal(true);
    const val = await build(data.val as Record<string, unknown>, 'data.val');
    const test = await val.get(0);
    // test pipeline: Resize keep_ratio to (128, 128): the 64×64 image doubles
    expect(test.img!.shape).to.deep.equal([128, 128, 3]);
    expect(test.gt_semantic_seg).to.equal(undefined);
  });

  it('the loader gives the same batches with 2 worker threads as on the calling thread (plugins rebuilt by name)', async function () {
    this.timeout(30000);
    const config = await loadConfig(path.join(configsDir, 'synthetic_drive.ts'), [`data.train.dataset.data_root=${root}`]);
    const kernel = await dataKernel();
    const options = { batchSize: 4, shuffle: true, dropLast: true, infinite: true, seed: 8, plugins: config.plugins as string[], path: 'data.train' };
    const inline = DataLoader.fromConfig(kernel, (config.data as { train: unknown }).train, options);
    const threaded = DataLoader.fromConfig(kernel, (config.data as { train: unknown }).train, { ...options, workers: 2 });
    try {
      for (let i = 0; i < 3; i++) {
        const [a, b] = [(await inline.next()) as Batch, (await threaded.next()) as Batch];
        expect(b.indices).to.deep.equal(a.indices);
        expect(b.img.shape).to.deep.equal([4, 64, 64, 3]);
        expect(Buffer.from(b.img.data.buffer).equals(Buffer.from(a.img.data.buffer))).to.equal(true);
        expect(Array.from(b.gt_semantic_seg!.data)).to.deep.equal(Array.from(a.gt_semantic_seg!.data));
      }
    } finally {
      await threaded.close();
    }
  });

  it('configs for Cityscapes and DRIVE carry MMSegmentation values', async () => {
    const cityscapes = await loadConfig(path.join(configsDir, 'cityscapes.ts'));
    const drive = await loadConfig(path.join(configsDir, 'drive.ts'));
    const cs = cityscapes.data as Record<string, any>;
    const dr = drive.data as Record<string, any>;
    expect([cs.samples_per_gpu, cs.workers_per_gpu, dr.samples_per_gpu, dr.workers_per_gpu]).to.deep.equal([2, 2, 4, 4]);
    expect(cs.train.pipeline[2]).to.deep.equal({ type: 'Resize', img_scale: [2048, 1024], ratio_range: [0.5, 2.0] });
    expect(cs.train.pipeline[3]).to.deep.equal({ type: 'RandomCrop', crop_size: [512, 1024], cat_max_ratio: 0.75 });
    expect(dr.train).to.include({ type: 'RepeatDataset', times: 40000 });
    expect(dr.train.dataset).to.include({ type: 'DRIVEDataset', data_root: 'data/DRIVE', img_dir: 'images/training', ann_dir: 'annotations/training' });
    expect(dr.val.pipeline[1]).to.include({ type: 'MultiScaleFlipAug', flip: false });
    expect(dr.val.pipeline[1].img_scale).to.deep.equal([584, 565]);
  });
});
