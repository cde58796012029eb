import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { readImage, readLabelMap } from '@segkit/core';
import { segkit } from './segkit-cli';
import { tinyConfig } from './tiny-config';

/** Width and height from a PNG's IHDR chunk. */
function pngSize(file: string): [number, number] {
  const bytes = fs.readFileSync(file);
  expect(bytes.readUInt32BE(0), `${file} is a PNG`).to.equal(0x89504e47);
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

/** DRIVE's palette (RGB), as the dataset plugin defines it: background, vessel. */
const DRIVE_PALETTE = [
  [120, 120, 120],
  [6, 230, 230],
];

describe('segkit confusion-matrix, browse-dataset, analyze-logs, benchmark (tiny trained UNet)', function () {
  this.timeout(600000);
  let dir: string;
  let config: string;
  let checkpoint: string;
  let jsonLog: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-analysis-'));
    const { synthDrive } = require('@segkit/datasets') as { synthDrive: (o: object) => Promise<unknown> };
    await synthDrive({ out: path.join(dir, 'data'), count: 4, size: [64, 64], seed: 3 });
    config = path.join(dir, 'tiny.json');
    fs.writeFileSync(config, JSON.stringify(tinyConfig(path.join(dir, 'data'))));
    const run = segkit(['train', config, '--work-dir', path.join(dir, 'work')]);
    expect(run.code, run.stderr).to.equal(0);
    checkpoint = path.join(dir, 'work', 'latest.safetensors');
    jsonLog = path.join(dir, 'work', fs.readdirSync(path.join(dir, 'work')).find((f) => f.endsWith('.log.json'))!);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('confusion-matrix: CSV counts equal the pairs counted from `segkit test --show-dir` predictions; the PNG cells carry the percentages', async () => {
    const shown = segkit(['test', config, checkpoint, '--show-dir', path.join(dir, 'shown')]);
    expect(shown.code, shown.stderr).to.equal(0);
    // Hand count: (ground truth, prediction) pairs over the validation images, ignore index 255 dropped.
    const expected = [
      [0, 0],
      [0, 0],
    ];
    for (const stem of ['01', '02']) {
      const truth = await readLabelMap(path.join(dir, 'data/annotations/validation', `${stem}_manual1.png`));
      const prediction = await readLabelMap(path.join(dir, 'shown', `${stem}_pred.png`));
      truth.data.forEach((gt, i) => {
        if (gt !== 255) expected[gt]![prediction.data[i]!]! += 1;
      });
    }
    expect(expected[0]![0]! + expected[0]![1]! + expected[1]![0]! + expected[1]![1]!).to.equal(2 * 64 * 64);

    const out = path.join(dir, 'cm');
    const counts = segkit(['confusion-matrix', config, checkpoint, '--out', out]);
    expect(counts.code, counts.stderr).to.equal(0);
    expect(counts.stdout).to.include(`wrote ${path.join(out, 'confusion_matrix.csv')} (pixel counts)`);
    expect(fs.readFileSync(path.join(out, 'confusion_matrix.csv'), 'utf8')).to.equal(
      `ground truth \\ prediction,background,vessel\nbackground,${expected[0]!.join(',')}\nvessel,${expected[1]!.join(',')}\n`,
    );
    const percentOf = (row: number, col: number) => (100 * expected[row]![col]!) / (expected[row]![0]! + expected[row]![1]!);
    const normalized = segkit(['confusion-matrix', config, checkpoint, '--out', path.join(dir, 'cm-normalized'), '--normalize']);
    expect(normalized.code, normalized.stderr).to.equal(0);
    const rows = fs.readFileSync(path.join(dir, 'cm-normalized', 'confusion_matrix.csv'), 'utf8').trim().split('\n').slice(1).map((line) => line.split(',').slice(1).map(Number));
    for (const [row, col] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) expect(rows[row]![col]).to.be.closeTo(percentOf(row, col), 5e-5);

    // Layout for 2 classes: cells of 180 px from x = 40 + 16 + 7·len("background"), y = 56; 'winter' colour map.
    const png = path.join(out, 'confusion_matrix.png');
    const [width, height] = pngSize(png);
    expect([width, height]).to.deep.equal([126 + 360 + 28 + 22 + 60, 56 + 360 + 56 + Math.ceil(0.71 * 7 * 10)]);
    const picture = await readImage(png, { order: 'rgb' });
    for (const [row, col] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) {
      const at = ((56 + row * 180 + 12) * width + 126 + col * 180 + 12) * 3;
      const t = percentOf(row, col) / 100;
      expect(Array.from(picture.data.subarray(at, at + 3)), `cell ${row},${col}`).to.deep.equal([0, Math.round(255 * t), Math.round(255 * (1 - 0.5 * t))]);
    }
  });

  it('browse-dataset: one PNG per sample at the crop size × zoom plus the legend; the palette blended at the label positions', async () => {
    const cropped = segkit(['browse-dataset', config, '--out', path.join(dir, 'browse'), '--count', '3', '--zoom', '2']);
    expect(cropped.code, cropped.stderr).to.equal(0);
    const files = fs.readdirSync(path.join(dir, 'browse')).sort();
    expect(files).to.have.length(3);
    // 32×32 crops zoomed ×2, legend 44 + 7·len("background") wide; 64 px tall (the legend needs 52).
    for (const file of files) expect(pngSize(path.join(dir, 'browse', file))).to.deep.equal([64 + 114, 64]);

    // Without random transforms the shown image is the file itself (Normalize undone exactly) and the labels its annotation.
    const plain = path.join(dir, 'plain.json');
    const pipeline = [
      { type: 'LoadImageFromFile' },
      { type: 'LoadAnnotations' },
      { type: 'Normalize', mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true },
      { type: 'DefaultFormatBundle' },
      { type: 'Collect', keys: ['img', 'gt_semantic_seg'] },
    ];
    const base = tinyConfig(path.join(dir, 'data')) as { data: { train: { dataset: Record<string, unknown> } } };
    base.data.train.dataset.pipeline = pipeline;
    fs.writeFileSync(plain, JSON.stringify(base));
    const run = segkit(['browse-dataset', plain, '--out', path.join(dir, 'plain'), '--count', '1', '--opacity', '0.6']);
    expect(run.code, run.stderr).to.equal(0);
    const [written] = fs.readdirSync(path.join(dir, 'plain'));
    const stem = written!.replace(/^0_/, '').replace(/\.png$/, '');
    const shown = await readImage(path.join(dir, 'plain', written!), { order: 'rgb' });
    const image = await readImage(path.join(dir, 'data/images/training', `${stem}.png`), { order: 'rgb' });
    const labels = await readLabelMap(path.join(dir, 'data/annotations/training', `${stem}_manual1.png`));
    const shownWidth = shown.shape[1]!;
    let checked = 0;
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        const p = y * 64 + x;
        const colour = DRIVE_PALETTE[labels.data[p]!]!;
        const expected = [0, 1, 2].map((c) => Math.trunc(image.data[p * 3 + c]! * 0.4 + colour[c]! * 0.6));
        const q = (y * shownWidth + x) * 3;
        expect(Array.from(shown.data.subarray(q, q + 3)), `pixel ${x},${y}`).to.deep.equal(expected);
        checked += 1;
      }
    }
    expect(checked).to.equal(64 * 64);
  });

  it('analyze-logs: two runs with loss and lr on one SVG (second axis), smoothing; --cal-train-time prints the summary', () => {
    const second = path.join(dir, 'second.log.json');
    fs.copyFileSync(jsonLog, second);
    const svgFile = path.join(dir, 'curves.svg');
    const run = segkit(['analyze-logs', jsonLog, second, '--keys', 'loss', 'lr', '--smooth', '2', '--out', svgFile]);
    expect(run.code, run.stderr).to.equal(0);
    const svg = fs.readFileSync(svgFile, 'utf8');
    expect(svg.match(/<polyline /g)).to.have.length(4);
    expect(svg.match(/data-axis="right"/g)).to.have.length(2);
    expect(svg).to.match(/class="y2-label"[^>]*>lr</).and.match(/class="y-label"[^>]*>loss</).and.include('>second lr</text>');

    const times = segkit(['analyze-logs', jsonLog, '--cal-train-time', '--include-outliers']);
    expect(times.code, times.stderr).to.equal(0);
    const logged = fs.readFileSync(jsonLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.mode === 'train').map((r) => r.time as number);
    const average = logged.reduce((a, b) => a + b, 0) / logged.length;
    expect(times.stdout).to.include(`average iter time: ${average.toFixed(4)} s/iter`);
    expect(times.stdout).to.include(`slowest interval ending at iter`).and.include(`average time is ${Math.max(...logged).toFixed(4)} s/iter`);
  });

  it('benchmark: a table of finite positive timings', () => {
    const run = segkit(['benchmark', config, checkpoint, '--images', '3', '--warmup', '1', '--train-iters', '2']);
    expect(run.code, run.stderr).to.equal(0);
    const values = new Map<string, number>();
    for (const line of run.stdout.split('\n')) {
      const match = line.match(/^(inference|training)\s+(images\/s|s\/image|s\/iter|data s\/iter)\s+([0-9.e+-]+)/);
      if (match) values.set(`${match[1]} ${match[2]}`, Number(match[3]));
    }
    expect([...values.keys()].sort()).to.deep.equal(['inference images/s', 'inference s/image', 'training data s/iter', 'training images/s', 'training s/iter']);
    for (const [name, value] of values) {
      if (name === 'training data s/iter') expect(value, name).to.be.at.least(0);
      else expect(value, name).to.be.greaterThan(0).and.satisfy(Number.isFinite);
    }
  });

  it('bad input: one line naming the option or file, exit code 1', () => {
    const cases: [string[], string][] = [
      [['confusion-matrix', config, path.join(dir, 'nope.safetensors')], `segkit: checkpoint: file not found: ${path.join(dir, 'nope.safetensors')}`],
      [['browse-dataset', config, '--out', path.join(dir, 'x'), '--split', 'test'], "segkit: --split: expected 'train' or 'val', got 'test'"],
      [['browse-dataset', config, '--out', path.join(dir, 'x'), '--count', '0'], 'segkit: --count: expected an integer of at least 1, got 0'],
      [['browse-dataset', config, '--out', path.join(dir, 'x'), '--opacity', '2'], "segkit: --opacity: expected a number in (0, 1], got '2'"],
      [['analyze-logs', jsonLog, '--keys', 'loss', '--legend', 'a', 'b'], 'segkit: --legend: expected 1 names (one per log and key: 1 log(s) × 1 key(s)), got 2'],
      [['analyze-logs', jsonLog, '--out', path.join(dir, 'c.jpg')], `segkit: --out: expected a file ending in .svg or .png, got ${path.join(dir, 'c.jpg')}`],
      [['analyze-logs', path.join(dir, 'missing.json')], `segkit: ${path.join(dir, 'missing.json')}: no such log file`],
      [['benchmark', config, '--images', '0'], 'segkit: --images: expected an integer of at least 1, got 0'],
    ];
    for (const [args, message] of cases) {
      const run = segkit(args);
      expect(run.code, args.join(' ')).to.equal(1);
      expect(run.stderr.trim().split('\n').pop(), args.join(' ')).to.equal(message);
      expect(run.stderr).to.not.match(/\n\s+at /);
    }
  });

  it('--help shows the defaults', () => {
    const help = segkit(['browse-dataset', '--help']);
    expect(help.stdout).to.include('(default: "train")').and.include('(default: 8)');
    expect(segkit(['benchmark', '--help']).stdout).to.include('(default: 50)').and.include('(default: 5)');
    expect(segkit(['analyze-logs', '--help']).stdout).to.include('(default: "curves.png")');
  });
});
