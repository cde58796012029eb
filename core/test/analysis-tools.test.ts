import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { z } from 'zod';
import { SegkitError } from '../src/errors';
import { createKernel } from '../src/plugin-system/kernel';
import { definePlugin } from '../src/plugin-system/plugin';
import type { Dataset, NdArray, PipelineResults, Segmentor } from '../src/components';
import type { SegmentorHandle } from '../src/apis/segmentor';
import type { LoadedConfig } from '../src/config/loader';
import { readImage, svgToPng } from '../src/io/image';
import { SeededRandom } from '../src/data/random';
import { tempTree } from '../src/testing';
import { ConfusionMatrix, confusionMatrixCsv, confusionMatrixOfTestSplit, renderConfusionMatrixSvg, winterColour } from '../src/tools/confusion-matrix';
import { calTrainTime, formatTrainTime, movingAverage, readRuns, renderRunsSvg } from '../src/tools/analyze-logs';
import { browseDataset, browseSample, denormalizeImage, zoomImage } from '../src/tools/browse-dataset';
import { median } from '../src/tools/benchmark';

/** Width and height from a PNG's IHDR chunk. */
function pngSize(bytes: Uint8Array): [number, number] {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  expect(view.readUInt32BE(0)).to.equal(0x89504e47);
  return [view.readUInt32BE(16), view.readUInt32BE(20)];
}

describe('confusion matrix (tools/confusion_matrix.py)', () => {
  it('counts (ground truth, prediction) pairs and drops the ignore index', () => {
    const matrix = new ConfusionMatrix(3, 255);
    // gt:   0 0 1 1 2 255     pred: 0 1 1 1 0 2
    matrix.add([0, 1, 1, 1, 0, 2], [0, 0, 1, 1, 2, 255]);
    matrix.add([2, 2], [2, 0]);
    expect(Array.from(matrix.counts)).to.deep.equal([1, 1, 1, 0, 2, 0, 1, 0, 1]);
    const percentages = Array.from(matrix.normalized());
    expect(percentages[0]).to.be.closeTo(100 / 3, 1e-12);
    expect(percentages.slice(3, 6)).to.deep.equal([0, 100, 0]);
    expect(percentages.slice(6)).to.deep.equal([50, 0, 50]);
  });

  it('a class without ground-truth pixels gives a NaN row and empty CSV cells; names are quoted when needed', () => {
    const matrix = new ConfusionMatrix(2, 255);
    matrix.add([0, 1, 1], [0, 0, 0]);
    const names = ['road, paved', 'sky'];
    expect(confusionMatrixCsv(matrix.counts, names, { percentages: false })).to.equal('ground truth \\ prediction,"road, paved",sky\n"road, paved",1,2\nsky,0,0\n');
    expect(confusionMatrixCsv(matrix.normalized(), names, { percentages: true })).to.equal(
      'ground truth \\ prediction,"road, paved",sky\n"road, paved",33.3333,66.6667\nsky,,\n',
    );
  });

  it('labels outside the classes are errors naming the image', () => {
    const matrix = new ConfusionMatrix(2, 255);
    expect(() => matrix.add([0], [5], 'sample 3 (a.png)')).to.throw(SegkitError, 'sample 3 (a.png): ground-truth label 5 is outside [0, 2)');
    expect(() => matrix.add([7], [1], 'sample 3 (a.png)')).to.throw(SegkitError, "predicted label 7 is outside [0, 2); the model's num_classes");
    expect(() => matrix.add([0, 1], [1], 'x')).to.throw(SegkitError, 'x: prediction has 2 pixels, ground truth 1');
  });

  it("matplotlib's winter map: blue at 0, green at 1", () => {
    expect(winterColour(0)).to.deep.equal([0, 0, 255]);
    expect(winterColour(1)).to.deep.equal([0, 255, 128]);
    expect(winterColour(0.5)).to.deep.equal([0, 128, 191]);
  });

  it('renders 19 classes: 361 cells, every name on both axes, a colour bar; the PNG has the SVG size', async () => {
    const names = Array.from({ length: 19 }, (_, i) => `class_${i}`);
    const percentages = new Float64Array(19 * 19);
    for (let i = 0; i < 19; i++) percentages[i * 19 + i] = 100;
    const svg = renderConfusionMatrixSvg(percentages, names);
    const cells = svg.slice(svg.indexOf('<g class="cells">'), svg.indexOf('</g>'));
    expect(cells.match(/<rect /g)).to.have.length(361);
    expect(cells.match(/>100<\/text>/g)).to.have.length(19);
    expect(cells.match(/>0\.0<\/text>/g)).to.have.length(342);
    for (const name of names) expect(svg.match(new RegExp(`>${name}</text>`, 'g'))).to.have.length(2);
    expect(svg).to.include('>Ground Truth Label</text>').and.include('>Prediction Label</text>').and.include('>100%</text>');
    const [width, height] = svg.match(/width="(\d+)" height="(\d+)"/)!.slice(1).map(Number) as [number, number];
    expect(pngSize(await svgToPng(svg))).to.deep.equal([width, height]);
    // 19 cells of 46 px plus names and colour bar: wide enough to read, not a poster.
    expect(width).to.be.within(19 * 46, 1400);
  });

  it('over the test split: hand-computed counts from a stub model and dataset', async () => {
    // Two 2×2 images; the stub model predicts the given maps.
    const truths = [
      [0, 1, 1, 255],
      [2, 2, 0, 1],
    ];
    const predictions = [
      [0, 1, 2, 0],
      [2, 1, 0, 0],
    ];
    const dataset: Dataset = {
      length: 2,
      classes: ['a', 'b', 'c'],
      palette: [[0, 0, 0], [1, 1, 1], [2, 2, 2]],
      ignoreIndex: 255,
      async get(index: number): Promise<PipelineResults> {
        return { img: { data: new Float32Array(12), shape: [2, 2, 3] }, filename: `img${index}.png` };
      },
      async getGroundTruth(index: number): Promise<NdArray> {
        return { data: Uint8Array.from(truths[index]!), shape: [2, 2] };
      },
    };
    const plugin = definePlugin({ name: 'hand-dataset', version: '0.0.0', components: { datasets: [{ type: 'HandDataset', schema: z.object({}), create: () => dataset }] } });
    const kernel = await createKernel({ plugins: [], backend: 'cpu', logger: { info: () => undefined, warn: () => undefined } });
    await kernel.loadPlugin(plugin);
    let call = 0;
    const model = {
      numClasses: 3,
      alignCorners: false,
      training: false,
      inference: (images: tf.Tensor4D) => tf.zeros([1, images.shape[1], images.shape[2], 3]) as tf.Tensor4D,
      labelsFromLogits: () => tf.tensor3d(predictions[call++]!, [1, 2, 2], 'int32'),
      train() {},
      eval() {},
    } as unknown as Segmentor;
    const handle: SegmentorHandle = { model, kernel, config: { data: { test: { type: 'HandDataset' } } } as LoadedConfig, testCfg: { mode: 'whole' }, dispose() {} };
    const before = tf.memory().numTensors;
    const { matrix, classNames } = await confusionMatrixOfTestSplit(handle);
    expect(tf.memory().numTensors).to.equal(before);
    expect(classNames).to.deep.equal(['a', 'b', 'c']);
    // Pairs (gt, pred): (0,0) (1,1) (1,2) | (2,2) (2,1) (0,0) (1,0); the 255 pixel is dropped.
    expect(Array.from(matrix.counts)).to.deep.equal([2, 0, 0, 1, 1, 1, 0, 1, 1]);
  });
});

describe('analyze-logs (several runs, second axis, smoothing, cal_train_time)', () => {
  function writeLogs(): { a: string; b: string } {
    const lines = (scale: number) => {
      const out: object[] = [{ env_info: 'node', config: {}, seed: 0 }];
      const times = [0.5, 0.2, 0.3, 0.4];
      times.forEach((time, i) => {
        const iter = 10 * (i + 1);
        out.push({ mode: 'train', iter, lr: 0.01 / (i + 1), time, loss: scale * (4 - i) });
      });
      out.push({ mode: 'val', iter: 40, mIoU: 0.5 });
      return out.map((l) => JSON.stringify(l)).join('\n') + '\n';
    };
    const dir = tempTree({ 'a/run.log.json': lines(1), 'b/run.log.json': lines(2) });
    return { a: path.join(dir, 'a/run.log.json'), b: path.join(dir, 'b/run.log.json') };
  }

  it('movingAverage is a trailing mean over the window', () => {
    expect(movingAverage([1, 2, 3, 4, 5], 2)).to.deep.equal([1, 1.5, 2.5, 3.5, 4.5]);
    expect(movingAverage([1, 2, 3, 4, 5], 3)).to.deep.equal([1, 1.5, 2, 3, 4]);
    expect(movingAverage([3, 1], 1)).to.deep.equal([3, 1]);
    expect(() => movingAverage([1], 0)).to.throw(SegkitError, '--smooth: expected a window of at least 1 point, got 0');
  });

  it('two logs × (loss, lr): four series, lr on the right axis (dashed), legends and axis labels', () => {
    const { a, b } = writeLogs();
    const series = readRuns([a, b], { keys: ['loss', 'lr'], legend: ['A loss', 'A lr', 'B loss', 'B lr'], smooth: 2 });
    expect(series.map((s) => s.label)).to.deep.equal(['A loss', 'A lr', 'B loss', 'B lr']);
    expect(series[2]!.points.map((p) => p.value)).to.deep.equal([8, 7, 5, 3]);
    // Learning rates are not smoothed.
    expect(series[3]!.points.map((p) => p.value)).to.deep.equal([0.01, 0.005, 0.01 / 3, 0.0025]);
    const svg = renderRunsSvg(series);
    const lines = [...svg.matchAll(/<polyline data-key="([^"]+)" data-label="([^"]+)" data-axis="(\w+)" points="([^"]*)"/g)];
    expect(lines.map((m) => [m[1], m[3], m[4]!.split(' ').length])).to.deep.equal([
      ['loss', 'left', 4],
      ['lr', 'right', 4],
      ['loss', 'left', 4],
      ['lr', 'right', 4],
    ]);
    expect(svg).to.match(/class="x-label"[^>]*>iter</).and.match(/class="y-label"[^>]*>loss</).and.match(/class="y2-label"[^>]*>lr</);
    expect(svg.match(/stroke-dasharray/g)).to.have.length(4); // two lr curves + their legend lines
    // Without --legend, several logs are told apart by their file names.
    expect(readRuns([a, b], { keys: ['loss'] }).map((s) => s.label)).to.deep.equal(['run loss', 'run loss']);
  });

  it('log scale: decade ticks; non-positive values and a wrong legend count are errors', () => {
    const { a } = writeLogs();
    const svg = renderRunsSvg(readRuns([a], { keys: ['loss'] }), { logScale: true });
    // loss 1..4 → decades 1e0, 1e1.
    expect(svg).to.include('>1e0</text>').and.include('>1e1</text>');
    expect(svg).to.not.match(/y2-label/);
    expect(() => readRuns([a], { keys: ['loss', 'lr'], legend: ['one'] })).to.throw(SegkitError, '--legend: expected 2 names (one per log and key: 1 log(s) × 2 key(s)), got 1');
    const zero = readRuns([a], { keys: ['loss'] });
    zero[0]!.points[0]!.value = 0;
    expect(() => renderRunsSvg(zero, { logScale: true })).to.throw(SegkitError, '--log-scale: loss has the value 0');
  });

  it('cal_train_time: average, slowest, fastest and std without the first interval', () => {
    const { a } = writeLogs();
    const summary = calTrainTime(a);
    // Times after the first: 0.2 (iter 20), 0.3 (30), 0.4 (40).
    expect(summary.intervals).to.equal(3);
    expect(summary.average).to.be.closeTo(0.3, 1e-12);
    expect(summary.slowest).to.deep.equal({ iter: 40, time: 0.4 });
    expect(summary.fastest).to.deep.equal({ iter: 20, time: 0.2 });
    expect(summary.std).to.be.closeTo(Math.sqrt(0.02 / 3), 1e-12);
    expect(formatTrainTime(summary).split('\n')).to.deep.equal([
      `-----Analyze train time of ${a}-----`,
      'slowest interval ending at iter 40, average time is 0.4000 s/iter',
      'fastest interval ending at iter 20, average time is 0.2000 s/iter',
      'time std over intervals is 0.0816',
      'average iter time: 0.3000 s/iter',
    ]);
    const all = calTrainTime(a, { includeOutliers: true });
    expect(all.average).to.be.closeTo(0.35, 1e-12);
    expect(all.slowest).to.deep.equal({ iter: 10, time: 0.5 });
  });
});

describe('browse-dataset', () => {
  it('undoes Normalize (to_rgb and BGR) and zooms by whole pixels', () => {
    const norm = { mean: [100, 110, 120], std: [10, 20, 30], to_rgb: true };
    // One RGB pixel normalized: (200−100)/10, (50−110)/20, (255−120)/30.
    expect(Array.from(denormalizeImage({ data: Float32Array.from([10, -3, 4.5]), shape: [1, 1, 3] }, norm).data)).to.deep.equal([200, 50, 255]);
    // BGR input, no normalization: the channels are swapped for display; values clamp to 0..255.
    expect(Array.from(denormalizeImage({ data: Float32Array.from([1, 2, 300]), shape: [1, 1, 3] }).data)).to.deep.equal([255, 2, 1]);
    const zoomed = zoomImage({ data: Uint8Array.from([1, 2, 3, 4, 5, 6]), shape: [1, 2, 3] }, 2);
    expect(zoomed.shape).to.deep.equal([2, 4, 3]);
    expect(Array.from(zoomed.data.subarray(0, 12))).to.deep.equal([1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
  });

  it('writes overlay + legend PNGs with the palette blended at the label positions', async () => {
    // A 2×3 BGR image (no Normalize) with labels 0 1 255 / 1 0 0.
    const bgr = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180];
    const labels = [0, 1, 255, 1, 0, 0];
    const dataset: Dataset = {
      length: 5,
      classes: ['road', 'sky'],
      palette: [[128, 64, 128], [70, 130, 180]],
      ignoreIndex: 255,
      async get(index: number): Promise<PipelineResults> {
        return { img: { data: Float32Array.from(bgr), shape: [2, 3, 3] }, gt_semantic_seg: { data: Int32Array.from(labels), shape: [2, 3] }, img_metas: { filename: `/data/img${index}.jpg` } };
      },
      async getGroundTruth(): Promise<NdArray> {
        throw new Error('not used: the pipeline loads the labels');
      },
    };
    const outDir = tempTree({});
    const files = await browseDataset(dataset, { outDir, count: 2, random: SeededRandom.fromSeed(0), zoom: 2, opacity: 0.5 });
    expect(files.map((f) => path.basename(f))).to.deep.equal(['0_img0.png', '1_img1.png']);
    const picture = await readImage(files[0]!, { order: 'rgb' });
    const [height, width] = picture.shape as [number, number];
    // Zoomed image 4×6, legend to its right and at least two 20 px rows tall.
    expect(height).to.be.at.least(4 + 2 * 20);
    expect(width).to.be.greaterThan(6 + 40);
    const pixel = (x: number, y: number) => Array.from(picture.data.subarray((y * width + x) * 3, (y * width + x) * 3 + 3));
    const rgbOf = (p: number) => [bgr[p * 3 + 2]!, bgr[p * 3 + 1]!, bgr[p * 3]!];
    const blend = (rgb: number[], colour: readonly number[]) => rgb.map((v, c) => Math.trunc(v * 0.5 + colour[c]! * 0.5));
    for (let p = 0; p < 6; p++) {
      const expected = labels[p] === 255 ? rgbOf(p) : blend(rgbOf(p), dataset.palette[labels[p]!]!);
      const [x, y] = [(p % 3) * 2, Math.floor(p / 3) * 2];
      for (const [dx, dy] of [[0, 0], [1, 1]]) expect(pixel(x + dx!, y + dy!), `pixel ${p}`).to.deep.equal(expected);
    }
    // The legend's swatches carry the palette colours (the first swatch's inside, at x 6+10+8, y 8+7).
    expect(pixel(6 + 18, 15)).to.deep.equal([128, 64, 128]);
    expect(pixel(6 + 18, 35)).to.deep.equal([70, 130, 180]);
    fs.rmSync(outDir, { recursive: true, force: true });
  });
});

describe('browse-dataset on a test pipeline (no LoadAnnotations)', () => {
  it('takes the ground truth at original size, resized (nearest) onto the image and 255 over the padding', async () => {
    const dataset: Dataset = {
      length: 1,
      classes: ['a', 'b'],
      palette: [[0, 0, 0], [255, 255, 255]],
      ignoreIndex: 255,
      async get(): Promise<PipelineResults> {
        // A 1×2 original resized to 2×4, then padded to 4×4.
        return { img: { data: new Float32Array(48), shape: [4, 4, 3] }, img_metas: { img_shape: [2, 4, 3], filename: 'x.png' } };
      },
      async getGroundTruth(): Promise<NdArray> {
        return { data: Uint8Array.from([0, 1]), shape: [1, 2] };
      },
    };
    const { labels, filename } = await browseSample(dataset, 0, undefined);
    expect(filename).to.equal('x.png');
    expect(labels.shape).to.deep.equal([4, 4]);
    expect(Array.from(labels.data)).to.deep.equal([0, 0, 1, 1, 0, 0, 1, 1, 255, 255, 255, 255, 255, 255, 255, 255]);
  });
});

describe('benchmark helpers', () => {
  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).to.equal(2);
    expect(median([4, 1, 3, 2])).to.equal(2.5);
    expect(() => median([])).to.throw(SegkitError);
  });
});
