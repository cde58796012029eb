import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import sharp from 'sharp';
import { convertCityscapes, convertDrive, fillPolygon, readZip, synthCityscapes, synthDrive } from '../src';
import { errorOf, histogram, makeZip, readGrey, tempDir } from './helpers';

const rowsOf = (data: Uint8Array, width: number) => Array.from({ length: data.length / width }, (_, y) => Array.from(data.subarray(y * width, (y + 1) * width)));

describe('zip reader', () => {
  it('reads stored and deflated entries and rejects a non-zip', () => {
    const dir = tempDir();
    for (const deflate of [true, false]) {
      const file = path.join(dir, `a${deflate}.zip`);
      fs.writeFileSync(file, makeZip({ 'x/a.txt': Buffer.from('hello hello hello'), 'b.bin': Buffer.from([0, 1, 2]) }, deflate));
      const entries = readZip(file);
      expect(entries.map((e) => e.name)).to.deep.equal(['x/a.txt', 'b.bin']);
      expect(entries[0]!.read().toString()).to.equal('hello hello hello');
      expect(Array.from(entries[1]!.read())).to.deep.equal([0, 1, 2]);
    }
    fs.writeFileSync(path.join(dir, 'bad.zip'), 'not a zip at all, just some text that is long enough');
    expect(() => readZip(path.join(dir, 'bad.zip'))).to.throw('not a zip archive');
  });
});

describe('convertDrive', () => {
  const width = 5;
  const height = 3;
  const rgb = Buffer.from(Array.from({ length: width * height * 3 }, (_, i) => (i * 37) % 256));
  const mask = Array.from({ length: width * height }, (_, i) => (i % 3 === 0 ? 255 : 0));
  const tiff = () => sharp(rgb, { raw: { width, height, channels: 3 } }).tiff({ compression: 'lzw' }).toBuffer();
  const gif = () => sharp(Buffer.from(mask.flatMap((v) => [v, v, v])), { raw: { width, height, channels: 3 } }).gif().toBuffer();

  it("writes MMSegmentation's DRIVE layout: TIFF → PNG (same pixels), GIF → 0/1 labels (value // 128)", async () => {
    const dir = tempDir();
    fs.writeFileSync(
      path.join(dir, 'training.zip'),
      makeZip({ 'training/images/21_training.tif': await tiff(), 'training/1st_manual/21_manual1.gif': await gif(), 'training/mask/21_training_mask.gif': await gif() }),
    );
    fs.writeFileSync(
      path.join(dir, 'test.zip'),
      makeZip({ 'test/images/01_test.tif': await tiff(), 'test/1st_manual/01_manual1.gif': await gif(), 'test/2nd_manual/01_manual2.gif': await gif() }, false),
    );
    const out = path.join(dir, 'DRIVE');
    const summary = await convertDrive(path.join(dir, 'training.zip'), path.join(dir, 'test.zip'), out);
    expect(summary.written).to.deep.equal({ 'images/training': 1, 'annotations/training': 1, 'images/validation': 1, 'annotations/validation': 2 });
    const list = (sub: string) => fs.readdirSync(path.join(out, sub)).sort();
    expect(list('images/training')).to.deep.equal(['21.png']);
    expect(list('annotations/training')).to.deep.equal(['21_manual1.png']);
    expect(list('images/validation')).to.deep.equal(['01.png']);
    expect(list('annotations/validation')).to.deep.equal(['01_manual1.png', '01_manual2.png']);
    const image = await sharp(path.join(out, 'images/training/21.png')).raw().toBuffer({ resolveWithObject: true });
    expect(image.info).to.include({ width, height, channels: 3 });
    expect(Array.from(image.data)).to.deep.equal(Array.from(rgb));
    const label = await readGrey(path.join(out, 'annotations/training/21_manual1.png'));
    expect(Array.from(label.data)).to.deep.equal(mask.map((v) => v >> 7));
  });

  it('a zip without DRIVE images, or an image without its manual label, is one clear error', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'empty.zip'), makeZip({ 'readme.txt': Buffer.from('x') }));
    fs.writeFileSync(path.join(dir, 'unlabelled.zip'), makeZip({ 'training/images/22_training.tif': await tiff() }));
    expect(await errorOf(() => convertDrive(path.join(dir, 'empty.zip'), path.join(dir, 'empty.zip'), path.join(dir, 'out')))).to.contain(
      "no '<folder>/images/*.tif' entries; is this DRIVE's training.zip?",
    );
    expect(await errorOf(() => convertDrive(path.join(dir, 'unlabelled.zip'), path.join(dir, 'empty.zip'), path.join(dir, 'out')))).to.equal(
      `${path.join(dir, 'unlabelled.zip')}: image(s) 22 have no 1st_manual/<id>_manual1.gif annotation`,
    );
    expect(await errorOf(() => convertDrive(path.join(dir, 'missing.zip'), path.join(dir, 'empty.zip')))).to.equal(`${path.join(dir, 'missing.zip')}: zip file not found`);
  });
});

describe('convertCityscapes', () => {
  it('fills polygons with trainIds in file order; skips deleted objects and the license plate; <name>group → <name>', async () => {
    const root = tempDir();
    const write = (relative: string, objects: unknown[]) => {
      const file = path.join(root, 'gtFine', relative);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify({ imgHeight: 6, imgWidth: 8, objects }));
    };
    write('train/cityA/cityA_000000_000001_gtFine_polygons.json', [
      { label: 'road', polygon: [[0, 0], [7, 0], [7, 5], [0, 5]] },
      { label: 'car', polygon: [[1, 1], [3, 1], [3, 2], [1, 2]] },
      { label: 'persongroup', polygon: [[5, 3], [6, 3], [6, 4], [5, 4]] },
      { label: 'license plate', polygon: [[1, 1], [2, 1], [2, 2], [1, 2]] },
      { label: 'sky', deleted: 1, polygon: [[0, 0], [7, 0], [7, 5], [0, 5]] },
      { label: 'ego vehicle', polygon: [[0, 5], [7, 5], [7, 5], [0, 5]] },
    ]);
    write('val/cityB/cityB_000000_000002_gtFine_polygons.json', [{ label: 'sky', polygon: [[0, 0], [7, 0], [7, 2], [0, 2]] }]);
    write('train/cityA/cityA_000000_000000_gtFine_polygons.json', []);
    const summary = await convertCityscapes(root);
    expect(summary.written).to.deep.equal({ 'gtFine/train/cityA': 2, 'gtFine/val/cityB': 1, 'train.txt': 2, 'val.txt': 1 });
    const labels = await readGrey(path.join(root, 'gtFine/train/cityA/cityA_000000_000001_gtFine_labelTrainIds.png'));
    expect(rowsOf(labels.data, 8)).to.deep.equal([
      [0, 0, 0, 0, 0, 0, 0, 0],
      [0, 13, 13, 13, 0, 0, 0, 0],
      [0, 13, 13, 13, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 11, 11, 0],
      [0, 0, 0, 0, 0, 11, 11, 0],
      [255, 255, 255, 255, 255, 255, 255, 255],
    ]);
    expect(histogram((await readGrey(path.join(root, 'gtFine/train/cityA/cityA_000000_000000_gtFine_labelTrainIds.png'))).data)).to.deep.equal({ 255: 48 });
    expect(histogram((await readGrey(path.join(root, 'gtFine/val/cityB/cityB_000000_000002_gtFine_labelTrainIds.png'))).data)).to.deep.equal({ 10: 24, 255: 24 });
    expect(fs.readFileSync(path.join(root, 'train.txt'), 'utf8')).to.equal('cityA/cityA_000000_000000\ncityA/cityA_000000_000001\n');
    expect(fs.readFileSync(path.join(root, 'val.txt'), 'utf8')).to.equal('cityB/cityB_000000_000002\n');
    expect(fs.existsSync(path.join(root, 'test.txt'))).to.equal(false);
  });

  it('an unknown label names the file and the object; a folder without gtFine is an error', async () => {
    const root = tempDir();
    fs.mkdirSync(path.join(root, 'gtFine/train/c'), { recursive: true });
    const file = path.join(root, 'gtFine/train/c/c_1_1_gtFine_polygons.json');
    fs.writeFileSync(file, JSON.stringify({ imgHeight: 2, imgWidth: 2, objects: [{ label: 'road', polygon: [] }, { label: 'unicorn', polygon: [[0, 0]] }] }));
    expect(await errorOf(() => convertCityscapes(root))).to.equal(`${file}: objects.1: label 'unicorn' is not in Cityscapes' label table`);
    expect(await errorOf(() => convertCityscapes(path.join(root, 'gtFine')))).to.contain('no gtFine folder');
  });

  it('fillPolygon includes boundary pixels: the triangle (0,0),(4,0),(0,4) is x + y ≤ 4', () => {
    const map = new Uint8Array(25);
    fillPolygon(map, 5, 5, [[0, 0], [4, 0], [0, 4]], 1);
    expect(rowsOf(map, 5)).to.deep.equal(Array.from({ length: 5 }, (_, y) => Array.from({ length: 5 }, (_, x) => (x + y <= 4 ? 1 : 0))));
  });
});

describe('synthetic data', function () {
  this.timeout(20000);

  it('synthDrive: 20 + 10 images of 128×128 by default; 0/1 labels; vessels darker than the fundus', async () => {
    const out = tempDir();
    expect(await synthDrive({ out, seed: 3 })).to.deep.equal({ out, train: 20, val: 10, size: [128, 128] });
    expect(fs.readdirSync(path.join(out, 'images/training')).sort()[0]).to.equal('11.png');
    expect(fs.readdirSync(path.join(out, 'annotations/validation'))).to.have.length(10);
    const label = await readGrey(path.join(out, 'annotations/training/11_manual1.png'));
    const counts = histogram(label.data);
    expect(Object.keys(counts)).to.deep.equal(['0', '1']);
    const vesselShare = counts[1]! / label.data.length;
    expect(vesselShare).to.be.within(0.03, 0.3);
    const { data } = await sharp(path.join(out, 'images/training/11.png')).raw().toBuffer({ resolveWithObject: true });
    let vessel = 0, fundus = 0, fundusCount = 0;
    for (let p = 0; p < label.data.length; p++) {
      const green = data[p * 3 + 1]!;
      if (label.data[p]) vessel += green;
      else if (data[p * 3]! > 40) {
        fundus += green;
        fundusCount++;
      }
    }
    expect(fundus / fundusCount - vessel / counts[1]!).to.be.greaterThan(20);
  });

  it('synthDrive is deterministic by seed', async () => {
    const [a, b, c] = [tempDir(), tempDir(), tempDir()];
    await synthDrive({ out: a, count: 1, size: [48, 48], seed: 5 });
    await synthDrive({ out: b, count: 1, size: [48, 48], seed: 5 });
    await synthDrive({ out: c, count: 1, size: [48, 48], seed: 6 });
    const bytes = (dir: string) => fs.readFileSync(path.join(dir, 'images/training/02.png'));
    expect(bytes(a).equals(bytes(b))).to.equal(true);
    expect(bytes(a).equals(bytes(c))).to.equal(false);
    expect(await errorOf(() => synthDrive({ out: a, count: 0 }))).to.equal('synth drive: --count: expected a positive integer, got 0');
  });

  it('synthCityscapes: every scene has all 19 train ids and some 255; its polygons re-render to the same labels', async () => {
    const out = tempDir();
    expect(await synthCityscapes({ out, count: 2, seed: 1 })).to.deep.equal({ out, train: 2, val: 1, size: [128, 256] });
    expect(fs.readFileSync(path.join(out, 'train.txt'), 'utf8')).to.equal('synthtown/synthtown_000000_000000\nsynthtown/synthtown_000000_000001\n');
    const labelFile = path.join(out, 'gtFine/val/synthville/synthville_000000_000002_gtFine_labelTrainIds.png');
    for (const file of [path.join(out, 'gtFine/train/synthtown/synthtown_000000_000000_gtFine_labelTrainIds.png'), labelFile]) {
      const ids = Object.keys(histogram((await readGrey(file)).data)).map(Number);
      expect(ids).to.deep.equal([...Array.from({ length: 19 }, (_, i) => i), 255]);
    }
    const before = Array.from((await readGrey(labelFile)).data);
    await convertCityscapes(out);
    expect(Array.from((await readGrey(labelFile)).data)).to.deep.equal(before);
  });
});
