import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { initSegmentor, loadConfigAndKernel, readCheckpointFile, readSafetensors, testSegmentor, train } from '@segkit/core';
import { segkit } from './segkit-cli';
import { tinyConfig } from './tiny-config';

interface DecodedPng {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}
const fastPng = require('fast-png') as { decode(data: Uint8Array): DecodedPng };
const decode = (file: string) => fastPng.decode(fs.readFileSync(file));

const quiet = { info: () => undefined, warn: () => undefined };
const DRIVE_PALETTE = [[120, 120, 120], [6, 230, 230]];
const CITYSCAPES_FIRST_TWO = [[128, 64, 128], [244, 35, 232]];

/** Every pixel of the palette PNG has the colour of the label PNG's class at that pixel. */
function expectPaletteMatches(paletteFile: string, labelFile: string, palette: number[][]): void {
  const colour = decode(paletteFile);
  const labels = decode(labelFile);
  expect([colour.height, colour.width, colour.channels]).to.deep.equal([labels.height, labels.width, 3]);
  for (let p = 0; p < labels.data.length; p++) {
    expect([...colour.data.subarray(3 * p, 3 * p + 3)], `pixel ${p}`).to.deep.equal(palette[labels.data[p]!]);
  }
}

describe('segkit test --out, infer over folders and globs, publish', function () {
  this.timeout(600000);
  let dir: string;
  let configFile: string;
  let checkpoint: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-tools-'));
    const { synthDrive } = require('@segkit/datasets') as { synthDrive: (o: object) => Promise<unknown> };
    await synthDrive({ out: path.join(dir, 'data'), count: 2, size: [48, 40], seed: 5 });
    configFile = path.join(dir, 'tiny.json');
    fs.writeFileSync(configFile, JSON.stringify(tinyConfig(path.join(dir, 'data'), { runner: { max_iters: 2 }, evaluation: { interval: 100, metric: 'mIoU' } })));
    const { config, kernel } = await loadConfigAndKernel(configFile, { logger: quiet });
    await train({ kernel, config, workDir: path.join(dir, 'work'), noValidate: true });
    checkpoint = path.join(dir, 'work', 'iter_2.safetensors');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('test --out writes the metrics and per-class values as JSON; --show-dir writes palette PNGs', async () => {
    const out = path.join(dir, 'results', 'results.json');
    const showDir = path.join(dir, 'show');
    const run = segkit(['test', configFile, checkpoint, '--eval', 'mIoU', 'mDice', '--out', out, '--show-dir', showDir, '--backend', 'cpu']);
    expect(run.code, run.stderr).to.equal(0);
    // Not a terminal: plain progress lines on stderr, the last one for the whole validation set (1 image).
    expect(run.stderr).to.match(/^test: 1\/1 images \(100%\), elapsed \d+:\d\d:\d\d, eta 0:00:00$/m);
    const json = JSON.parse(fs.readFileSync(out, 'utf8'));
    // The same values as the in-process API computes for this checkpoint.
    const handle = await initSegmentor(configFile, checkpoint, { logger: quiet, backend: 'cpu' });
    const before = tf.memory().numTensors;
    const expected = await testSegmentor(handle, { metrics: ['mIoU', 'mDice'] });
    expect(tf.memory().numTensors).to.equal(before);
    handle.dispose();
    expect(Object.keys(json.metrics).sort()).to.deep.equal(['aAcc', 'mAcc', 'mDice', 'mIoU']);
    for (const key of Object.keys(json.metrics)) expect(json.metrics[key]).to.be.closeTo(expected.metrics[key]!, 1e-6);
    expect(json.per_class.map((row: { Class: string }) => row.Class)).to.deep.equal(['background', 'vessel']);
    expect(Object.keys(json.per_class[0]).sort()).to.deep.equal(['Acc', 'Class', 'Dice', 'IoU']);
    for (const [i, row] of expected.classTable.entries()) {
      for (const column of ['IoU', 'Acc', 'Dice']) {
        const value = row[column] as number;
        if (Number.isNaN(value)) expect(json.per_class[i][column]).to.equal(null);
        else expect(json.per_class[i][column]).to.be.closeTo(value, 1e-6);
      }
    }
    expect(json.eval).to.deep.equal(['mIoU', 'mDice']);
    // The validation image is 01.png (48×40): overlay, palette and label PNGs at its size.
    expect(fs.readdirSync(showDir).sort()).to.deep.equal(['01_overlay.png', '01_palette.png', '01_pred.png']);
    expect([decode(path.join(showDir, '01_overlay.png')).height, decode(path.join(showDir, '01_overlay.png')).width]).to.deep.equal([48, 40]);
    expectPaletteMatches(path.join(showDir, '01_palette.png'), path.join(showDir, '01_pred.png'), DRIVE_PALETTE);
  });

  it('test: bad --out and --opacity are one clear error each', () => {
    const badOut = segkit(['test', configFile, checkpoint, '--out', path.join(dir, 'results.txt')]);
    expect(badOut.code).to.equal(1);
    expect(badOut.stderr.trim()).to.equal(`segkit: --out: expected a .json file, got '${path.join(dir, 'results.txt')}'`);
    const badOpacity = segkit(['test', configFile, checkpoint, '--opacity', '2']);
    expect(badOpacity.stderr.trim()).to.equal('segkit: --opacity: expected a number in [0, 1], got 2');
  });

  it('infer takes a folder and a glob, needs no dataset folder, goes on past an unreadable image and exits 1 with a summary', () => {
    // The images are copied out and the dataset removed from the config's reach: only the test pipeline is used.
    const images = path.join(dir, 'to-infer');
    fs.mkdirSync(path.join(images, 'nested'), { recursive: true });
    fs.copyFileSync(path.join(dir, 'data', 'images', 'validation', '01.png'), path.join(images, 'a.png'));
    fs.copyFileSync(path.join(dir, 'data', 'images', 'training', '02.png'), path.join(images, 'nested', 'b.png'));
    fs.writeFileSync(path.join(images, 'broken.png'), 'not a png');
    const noData = path.join(dir, 'no-data.json');
    fs.writeFileSync(noData, JSON.stringify(tinyConfig(path.join(dir, 'missing-data-folder'))));
    const out = path.join(dir, 'infer-out');
    const run = segkit(['infer', noData, checkpoint, images, `${images}/**/b.png`, '--out', out, '--backend', 'cpu']);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.contain(`segkit: infer: 1 of 3 images failed:\n  ${path.join(images, 'broken.png')}: `);
    expect(run.stderr).to.match(/^infer: 3\/3 images \(100%\)/m);
    expect(fs.readdirSync(out).sort()).to.deep.equal(['a_overlay.png', 'a_palette.png', 'a_pred.png', 'b_overlay.png', 'b_palette.png', 'b_pred.png']);
    expect(decode(path.join(out, 'b_pred.png'))).to.include({ height: 48, width: 40, channels: 1 });
    // Colours from the checkpoint's meta.config (a DRIVEDataset).
    expectPaletteMatches(path.join(out, 'a_palette.png'), path.join(out, 'a_pred.png'), DRIVE_PALETTE);
  });

  it('infer --palette: a built-in name or a JSON file; bad values and missing images are clear errors', () => {
    const image = path.join(dir, 'data', 'images', 'validation', '01.png');
    const named = path.join(dir, 'named');
    expect(segkit(['infer', configFile, checkpoint, image, '--out', named, '--palette', 'cityscapes', '--quiet']).code).to.equal(0);
    expectPaletteMatches(path.join(named, '01_palette.png'), path.join(named, '01_pred.png'), CITYSCAPES_FIRST_TWO);
    const paletteFile = path.join(dir, 'palette.json');
    fs.writeFileSync(paletteFile, JSON.stringify({ classes: ['bg', 'fg'], palette: [[1, 2, 3], [250, 0, 9]] }));
    const fromFile = path.join(dir, 'from-file');
    const run = segkit(['infer', configFile, checkpoint, image, '--out', fromFile, '--palette', paletteFile, '--quiet']);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stderr).to.not.match(/^infer: /m); // --quiet: no progress lines (config warnings only)
    expect(run.stderr).to.match(/^warning: /m);
    expectPaletteMatches(path.join(fromFile, '01_palette.png'), path.join(fromFile, '01_pred.png'), [[1, 2, 3], [250, 0, 9]]);

    expect(segkit(['infer', configFile, checkpoint, image, '--out', fromFile, '--palette', 'nope']).stderr.trim()).to.equal(
      "segkit: --palette: 'nope' is neither a built-in palette (cityscapes, drive) nor an existing JSON file",
    );
    fs.writeFileSync(paletteFile, JSON.stringify([[1, 2, 3], [256, 0, 0]]));
    expect(segkit(['infer', configFile, checkpoint, image, '--out', fromFile, '--palette', paletteFile]).stderr.trim()).to.equal(
      `segkit: --palette ${paletteFile}[1]: expected [r, g, b] with integers 0..255, got [256,0,0]`,
    );
    expect(segkit(['infer', configFile, checkpoint, path.join(dir, 'nothing-*.png'), '--out', fromFile]).stderr.trim()).to.equal(
      `segkit: infer: no file matches ${path.join(dir, 'nothing-*.png')}`,
    );
    expect(segkit(['infer', configFile, checkpoint, path.join(dir, 'missing.png'), '--out', fromFile]).stderr.trim()).to.equal(
      `segkit: infer: image not found: ${path.join(dir, 'missing.png')}`,
    );
    const help = segkit(['infer', '--help']).stdout;
    expect(help).to.contain('(default: 0.5)');
    expect(help).to.contain('--palette <name|file>');
  });

  it('publish drops the optimizer state, keeps meta and names the file with its sha256 prefix (.safetensors and .pth)', async () => {
    const source = readSafetensors(checkpoint);
    expect([...source.tensors.keys()].some((key) => key.startsWith('__optimizer__.'))).to.equal(true);
    const sourceMeta = JSON.parse(source.metadata.meta!);

    const run = segkit(['publish', checkpoint, path.join(dir, 'published', 'tiny_unet.safetensors')]);
    expect(run.code, run.stderr).to.equal(0);
    const [written] = fs.readdirSync(path.join(dir, 'published'));
    const file = path.join(dir, 'published', written!);
    const sha256 = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    expect(written).to.equal(`tiny_unet-${sha256.slice(0, 8)}.safetensors`);
    expect(run.stdout).to.contain(`wrote ${file} (`);
    expect(run.stdout).to.contain(`sha256 ${sha256}`);
    const published = readSafetensors(file);
    expect(published.metadata.format).to.equal('segkit');
    const weightKeys = [...source.tensors.keys()].filter((key) => !key.startsWith('__optimizer__.'));
    expect([...published.tensors.keys()]).to.deep.equal(weightKeys);
    for (const key of weightKeys) expect([...published.tensors.get(key)!.data]).to.deep.equal([...source.tensors.get(key)!.data]);
    const { optimizer, ...metaWithoutOptimizer } = sourceMeta;
    expect(optimizer).to.not.equal(undefined);
    expect(JSON.parse(published.metadata.meta!)).to.deep.equal(metaWithoutOptimizer);

    const pth = segkit(['publish', checkpoint, path.join(dir, 'published-pth', 'tiny_unet.pth')]);
    expect(pth.code, pth.stderr).to.equal(0);
    const [pthName] = fs.readdirSync(path.join(dir, 'published-pth'));
    const pthFile = path.join(dir, 'published-pth', pthName!);
    expect(pthName).to.equal(`tiny_unet-${crypto.createHash('sha256').update(fs.readFileSync(pthFile)).digest('hex').slice(0, 8)}.pth`);
    const fromPth = await readCheckpointFile(pthFile);
    const fromSafetensors = await readCheckpointFile(file);
    expect((fromPth.meta as { iter: number }).iter).to.equal(2);
    expect(fromPth.meta).to.not.have.property('optimizer');
    expect([...fromPth.tensors.keys()].sort()).to.deep.equal(weightKeys.slice().sort());
    // A conv weight: OIHW in the .pth, HWIO in segkit's file; the same values once transposed back.
    const convKey = weightKeys.find((key) => source.tensors.get(key)!.shape.length === 4)!;
    const [kh, kw, cin, cout] = fromSafetensors.tensors.get(convKey)!.shape as [number, number, number, number];
    expect(fromPth.tensors.get(convKey)!.shape).to.deep.equal([cout, cin, kh, kw]);
    const hwio = fromSafetensors.tensors.get(convKey)!.data;
    const oihw = fromPth.tensors.get(convKey)!.data;
    expect(oihw[((1 * cin + 0) * kh + 2) * kw + 1]).to.equal(hwio[((2 * kw + 1) * cin + 0) * cout + 1]);

    expect(segkit(['publish', path.join(dir, 'none.safetensors'), path.join(dir, 'x.safetensors')]).stderr.trim()).to.equal(
      `segkit: publish: checkpoint not found: ${path.join(dir, 'none.safetensors')}`,
    );
    expect(segkit(['publish', checkpoint, path.join(dir, 'x.bin')]).stderr.trim()).to.equal(`segkit: publish: ${path.join(dir, 'x.bin')}: expected OUT to end in .safetensors or .pth`);
  });
  it('synth, convert and check-dataset print progress lines without a terminal, and nothing with --quiet', () => {
    const synthOut = path.join(dir, 'synth-progress');
    const synth = segkit(['synth', 'cityscapes', '--out', synthOut, '--count', '2', '--size', '32', '64']);
    expect(synth.code, synth.stderr).to.equal(0);
    // 2 training + 1 validation scenes; one line per 10 % step, each step is a third here.
    expect(synth.stderr.trim().split('\n').map((line) => line.replace(/, elapsed.*$/, ''))).to.deep.equal([
      'synth cityscapes: 1/3 images (33%)',
      'synth cityscapes: 2/3 images (66%)',
      'synth cityscapes: 3/3 images (100%)',
    ]);
    expect(fs.readdirSync(path.join(synthOut, 'leftImg8bit', 'train', 'synthtown'))).to.have.length(2);
    const convert = segkit(['convert', 'cityscapes', synthOut]);
    expect(convert.code, convert.stderr).to.equal(0);
    expect(convert.stderr).to.match(/^convert cityscapes \(polygons\): 3\/3 files \(100%\), elapsed/m);
    expect(JSON.parse(convert.stdout)).to.deep.equal({ 'gtFine/train/synthtown': 2, 'gtFine/val/synthville': 1, 'train.txt': 2, 'val.txt': 1 });
    const quietSynth = segkit(['synth', 'drive', '--out', path.join(dir, 'synth-quiet'), '--count', '2', '--size', '32', '32', '--quiet']);
    expect(quietSynth.code).to.equal(0);
    expect(quietSynth.stderr).to.equal('');
    const check = segkit(['check-dataset', configFile, '--split', 'val']);
    expect(check.code, check.stderr).to.equal(0);
    expect(check.stderr).to.match(/^check-dataset data\.val: 1\/1 images \(100%\), elapsed/m);
    expect(segkit(['synth', 'drive', '--help']).stdout).to.match(/--seed <n> +random seed \(default: 0\)/);
  });
});
