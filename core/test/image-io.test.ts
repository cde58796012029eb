import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { encodePng, readImage, readLabelMap, svgToPng, writePng } from '../src/io/image';
import { inferenceSegmentor, type SegmentorHandle } from '../src/apis/segmentor';
import { createKernel, definePlugin, SegkitError, z, type LoadedConfig, type NdArray, type Segmentor } from '../src';
import { errorMessage, tempTree } from '../src/testing';

/** Node's module loader, whose `_load` the missing-codec test replaces for the two codec names. */
const Module = require('module') as { _load(request: string, ...rest: unknown[]): unknown };

/** Written by make_expected.py from Pillow's decoding of the copied MMSegmentation test images. */
const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'image-io');
interface LabelExpectation {
  shape: number[];
  counts: [number, number][];
  /** [y, x, stored value, label]. */
  points: [number, number, number, number][];
  palette?: [number, number, number][];
}
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as {
  'palette-4bit.png': LabelExpectation;
  'grey-16bit.png': LabelExpectation;
  'colour.jpg': { shape: number[]; channel_sums: number[]; points_rgb: [number, number, number[]][] };
};

const fixture = (name: string): string => path.join(FIXTURES, name);
const at = (image: NdArray<Uint8Array>, y: number, x: number): number[] => {
  const channels = image.shape[2] ?? 1;
  const start = (y * image.shape[1]! + x) * channels;
  return [...image.data.subarray(start, start + channels)];
};
function valueCounts(data: Uint8Array): [number, number][] {
  const counts = new Map<number, number>();
  for (const v of data) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => a[0] - b[0]);
}

const fastPng = require('fast-png') as { encode(image: { width: number; height: number; data: Uint8Array; channels: number; depth: 8 }): Uint8Array };

// A 2×3 RGB image: red, green, blue / (10,20,30), white, (1,2,3).
const RGB_PIXELS = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 255, 255, 255, 1, 2, 3];
const BGR_PIXELS = [0, 0, 255, 0, 255, 0, 255, 0, 0, 30, 20, 10, 255, 255, 255, 3, 2, 1];

describe('image I/O (core/io/image)', () => {
  it('writes an RGB PNG and reads the same pixels back in RGB and in BGR order', async () => {
    const file = path.join(tempTree({}), 'new/folder/rgb.png');
    writePng(file, { data: Uint8Array.from(RGB_PIXELS), shape: [2, 3, 3] });
    const rgb = await readImage(file, { order: 'rgb' });
    expect(rgb.shape).to.deep.equal([2, 3, 3]);
    expect([...rgb.data]).to.deep.equal(RGB_PIXELS);
    const bgr = await readImage(file, { order: 'bgr' });
    expect([...bgr.data]).to.deep.equal(BGR_PIXELS);
  });

  it('writes int32 and uint8 label maps as grey PNGs whose values are the labels', async () => {
    const dir = tempTree({});
    writePng(path.join(dir, 'int32.png'), { data: Int32Array.of(0, 1, 18, 255, 3, 0), shape: [2, 3] });
    writePng(path.join(dir, 'uint8.png'), { data: Uint8Array.of(7, 0, 254), shape: [1, 3, 1] });
    const int32 = await readLabelMap(path.join(dir, 'int32.png'));
    expect(int32.shape).to.deep.equal([2, 3]);
    expect([...int32.data]).to.deep.equal([0, 1, 18, 255, 3, 0]);
    expect([...(await readLabelMap(path.join(dir, 'uint8.png'))).data]).to.deep.equal([7, 0, 254]);
    // As an image, grey is replicated to three channels (OpenCV's IMREAD_COLOR).
    const grey = await readImage(path.join(dir, 'uint8.png'), { order: 'bgr' });
    expect(grey.shape).to.deep.equal([1, 3, 3]);
    expect([...grey.data]).to.deep.equal([7, 7, 7, 0, 0, 0, 254, 254, 254]);
  });

  it('writes atomically: an existing file is replaced whole and no temporary file stays behind', async () => {
    const dir = tempTree({ 'a.png': 'old contents' });
    writePng(path.join(dir, 'a.png'), { data: Uint8Array.of(5, 6), shape: [1, 2] });
    expect(fs.readdirSync(dir)).to.deep.equal(['a.png']);
    expect([...(await readLabelMap(path.join(dir, 'a.png'))).data]).to.deep.equal([5, 6]);
  });

  it('encodePng gives the bytes writePng writes; readImage and readLabelMap take bytes (Buffer or a Uint8Array view)', async () => {
    const png = encodePng({ data: Uint8Array.from(RGB_PIXELS), shape: [2, 3, 3] });
    expect([...png.subarray(0, 8)]).to.deep.equal([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const file = path.join(tempTree({}), 'b.png');
    writePng(file, { data: Uint8Array.from(RGB_PIXELS), shape: [2, 3, 3] });
    expect([...fs.readFileSync(file)]).to.deep.equal([...png]);

    expect([...(await readImage(Buffer.from(png), { order: 'bgr' })).data]).to.deep.equal(BGR_PIXELS);
    // A view into a larger buffer, at an offset: only its own bytes are decoded.
    const padded = new Uint8Array(png.length + 7);
    padded.set(png, 3);
    expect([...(await readImage(padded.subarray(3, 3 + png.length), { order: 'rgb' })).data]).to.deep.equal(RGB_PIXELS);
    const labels = encodePng({ data: Int32Array.of(4, 0, 9), shape: [3, 1] });
    const decoded = await readLabelMap(labels);
    expect(decoded.shape).to.deep.equal([3, 1]);
    expect([...decoded.data]).to.deep.equal([4, 0, 9]);
  });

  it('drops alpha: grey + alpha is replicated grey, RGBA keeps its colour channels', async () => {
    const greyAlpha = fastPng.encode({ width: 2, height: 1, data: Uint8Array.of(40, 0, 200, 255), channels: 2, depth: 8 });
    expect([...(await readImage(greyAlpha, { order: 'rgb' })).data]).to.deep.equal([40, 40, 40, 200, 200, 200]);
    const rgba = fastPng.encode({ width: 2, height: 1, data: Uint8Array.of(1, 2, 3, 0, 250, 251, 252, 128), channels: 4, depth: 8 });
    expect([...(await readImage(rgba, { order: 'rgb' })).data]).to.deep.equal([1, 2, 3, 250, 251, 252]);
    expect([...(await readImage(rgba, { order: 'bgr' })).data]).to.deep.equal([3, 2, 1, 252, 251, 250]);
  });

  it("a 4-bit palette label map (MMSegmentation's pseudo_dataset) gives its indices, not the palette's colours", async () => {
    const want = expected['palette-4bit.png'];
    const labels = await readLabelMap(fixture('palette-4bit.png'));
    expect(labels.shape).to.deep.equal(want.shape);
    expect(valueCounts(labels.data)).to.deep.equal(want.counts);
    expect(want.counts).to.deep.equal([[0, 20994], [1, 11774]]);
    for (const [y, x, , label] of want.points) expect(at(labels, y, x), `(${y}, ${x})`).to.deep.equal([label]);
    // The same file as an image shows index 1's palette colour (109, 227, 132).
    const [y, x] = want.points.find((p) => p[3] === 1)!;
    expect(at(await readImage(fixture('palette-4bit.png'), { order: 'rgb' }), y, x)).to.deep.equal(want.palette![1]);
  });

  it('a 16-bit label map wraps to 8 bits like astype(uint8) (24000 → 192, 26002 → 146)', async () => {
    const want = expected['grey-16bit.png'];
    const labels = await readLabelMap(fixture('grey-16bit.png'));
    expect(labels.shape).to.deep.equal(want.shape);
    expect(valueCounts(labels.data)).to.deep.equal(want.counts);
    for (const [y, x, stored, label] of want.points) {
      expect(label).to.equal(stored & 0xff);
      expect(at(labels, y, x), `(${y}, ${x}) stores ${stored}`).to.deep.equal([label]);
    }
    expect(want.points.filter((p) => p[2] > 255).map((p) => [p[2], p[3]])).to.deep.include.members([[24000, 192], [26002, 146]]);
  });

  it('a JPEG decodes to its size with the pixels Pillow gives (same libjpeg-turbo decoding), in either order', async () => {
    const want = expected['colour.jpg'];
    const rgb = await readImage(fixture('colour.jpg'), { order: 'rgb' });
    expect(rgb.shape).to.deep.equal([128, 256, 3]);
    const sums = [0, 0, 0];
    rgb.data.forEach((v, i) => (sums[i % 3]! += v));
    expect(sums).to.deep.equal(want.channel_sums);
    const bgr = await readImage(fs.readFileSync(fixture('colour.jpg')), { order: 'bgr' });
    for (const [y, x, pixel] of want.points_rgb) {
      expect(at(rgb, y, x), `rgb (${y}, ${x})`).to.deep.equal(pixel);
      expect(at(bgr, y, x), `bgr (${y}, ${x})`).to.deep.equal([...pixel].reverse());
    }
  });

  it('a colour label map is one error naming the file and the first mismatching pixel', async () => {
    const file = path.join(tempTree({}), 'colour-label.png');
    writePng(file, { data: Uint8Array.of(3, 3, 3, 10, 20, 30), shape: [1, 2, 3] });
    expect(await errorMessage(() => readLabelMap(file))).to.equal(
      `${file} is a colour image (pixel 1,0 has different channel values); expected a single-channel or palette PNG of class indices`,
    );
    // A grey map saved as RGB (equal channels) is fine.
    writePng(file, { data: Uint8Array.of(3, 3, 3, 9, 9, 9), shape: [1, 2, 3] });
    expect([...(await readLabelMap(file)).data]).to.deep.equal([3, 9]);
  });

  it('missing and corrupt files are SegkitErrors naming the file', async () => {
    const dir = tempTree({ 'corrupt.png': 'not an image at all', 'corrupt.jpg': 'garbage' });
    const truncated = path.join(dir, 'truncated.png');
    fs.writeFileSync(truncated, encodePng({ data: new Uint8Array(64).fill(7), shape: [8, 8] }).subarray(0, 40));
    const missing = path.join(dir, 'missing.png');

    const failures: [() => Promise<unknown>, string][] = [
      [() => readImage(missing, { order: 'bgr' }), `cannot read ${missing} (file not found)`],
      [() => readLabelMap(missing), `cannot read ${missing} (file not found)`],
      [() => readImage(dir, { order: 'bgr' }), `cannot read ${dir}: EISDIR`],
      [() => readImage(path.join(dir, 'corrupt.png'), { order: 'rgb' }), `cannot decode ${path.join(dir, 'corrupt.png')}: `],
      [() => readImage(truncated, { order: 'rgb' }), `cannot decode ${truncated}: `],
      [() => readLabelMap(truncated), `cannot decode label map ${truncated}: `],
      [() => readLabelMap(path.join(dir, 'corrupt.jpg')), `cannot decode label map ${path.join(dir, 'corrupt.jpg')}: `],
      [() => readImage(Buffer.from('0123456789ab'), { order: 'bgr' }), 'cannot decode 12 bytes of image data: '],
      [() => readImage(Uint8Array.of(1, 2, 3), { order: 'bgr', name: 'upload.png' }), 'cannot decode upload.png: '],
    ];
    for (const [read, start] of failures) {
      let error: unknown;
      await read().catch((e: unknown) => (error = e));
      expect(error, start).to.be.instanceOf(SegkitError);
      expect((error as Error).message.startsWith(start), `${(error as Error).message} starts with ${start}`).to.equal(true);
    }
  });

  it('rejects arrays a PNG cannot hold, naming the file', () => {
    expect(() => writePng('x.png', { data: Int32Array.of(0, 256), shape: [1, 2] })).to.throw(SegkitError, 'x.png: an 8-bit PNG holds values 0..255, got 256');
    expect(() => writePng('x.png', { data: Int32Array.of(-1, 0), shape: [1, 2] })).to.throw(SegkitError, 'x.png: an 8-bit PNG holds values 0..255, got -1');
    expect(() => encodePng({ data: new Uint8Array(8), shape: [2, 2, 2] })).to.throw(
      SegkitError,
      'encodePng: expected an image of shape [H, W, 3] or a label map of shape [H, W], got [2, 2, 2]',
    );
    expect(() => encodePng({ data: new Uint8Array(5), shape: [2, 3] })).to.throw(SegkitError, 'encodePng: shape [2, 3] needs 6 values, got 5');
    expect(fs.existsSync('x.png')).to.equal(false);
  });

  it('svgToPng renders an SVG to PNG pixels', async () => {
    const png = await svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="3" height="2"><rect width="3" height="2" fill="#0a14c8"/></svg>');
    const image = await readImage(png, { order: 'rgb' });
    expect(image.shape).to.deep.equal([2, 3, 3]);
    expect([...image.data]).to.deep.equal(Array.from({ length: 6 }, () => [10, 20, 200]).flat());
  });

  it('a codec that is not installed is one SegkitError saying what to install', async () => {
    const load = Module._load;
    Module._load = function (request: string, ...rest: unknown[]) {
      if (request === 'sharp' || request === 'fast-png') {
        throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
      }
      return load.call(this, request, ...rest);
    };
    try {
      expect(await errorMessage(() => readImage(fixture('colour.jpg'), { order: 'rgb' }))).to.equal(
        `decoding ${fixture('colour.jpg')} needs the sharp package (an optional dependency of @segkit/core): npm install sharp`,
      );
      expect(await errorMessage(() => readLabelMap(fixture('palette-4bit.png')))).to.equal(
        `reading label map ${fixture('palette-4bit.png')} needs the fast-png package (an optional dependency of @segkit/core): npm install fast-png`,
      );
      expect(() => writePng('y.png', { data: new Uint8Array(1), shape: [1, 1] })).to.throw(
        SegkitError,
        'PNG output (y.png) needs the fast-png package (an optional dependency of @segkit/core): npm install fast-png',
      );
      expect(await errorMessage(() => svgToPng('<svg/>'))).to.equal(
        'PNG output of a plot (use .svg to do without it) needs the sharp package (an optional dependency of @segkit/core): npm install sharp',
      );
    } finally {
      Module._load = load;
    }
  });
});

describe('inferenceSegmentor with encoded image bytes', () => {
  /** Logits = the float image itself, so each pixel's label is the index of its largest channel as the model saw it. */
  const channelArgmaxModel = {
    alignCorners: false,
    inference: (images: tf.Tensor4D) => tf.clone(images),
    labelsFromLogits: (logits: tf.Tensor4D) => tf.tidy(() => tf.cast(tf.argMax(logits, 3), 'int32') as tf.Tensor3D),
  } as unknown as Segmentor;

  async function handle(): Promise<SegmentorHandle> {
    const toFloat = definePlugin({
      name: 'image-io-test-transforms',
      version: '0.0.0',
      components: {
        transforms: [
          {
            type: 'ToFloat',
            schema: z.strictObject({}),
            create: () => ({ apply: (results) => ({ ...results, img: { data: Float32Array.from(results.img!.data), shape: results.img!.shape } }) }),
          },
        ],
      },
    });
    const kernel = await createKernel({ plugins: [toFloat], backend: 'cpu', logger: { info() {}, warn() {} } });
    const config = { data: { test: { type: 'AnyDataset', pipeline: [{ type: 'LoadImageFromFile' }, { type: 'ToFloat' }] } } } as unknown as LoadedConfig;
    return { model: channelArgmaxModel, config, kernel, testCfg: {}, dispose() {} };
  }

  it('decodes a PNG Buffer to BGR like LoadImageFromFile: red → channel 2, green → 1, blue → 0', async () => {
    const segmentor = await handle();
    const before = tf.memory().numTensors;
    const png = Buffer.from(encodePng({ data: Uint8Array.from(RGB_PIXELS.slice(0, 9)), shape: [1, 3, 3] }));
    const result = await inferenceSegmentor(segmentor, png);
    expect(result.labels.shape).to.deep.equal([1, 3]);
    expect([...result.labels.data]).to.deep.equal([2, 1, 0]);
    // The same pixels given as RGBA ImageData predict the same.
    const rgba = { data: Uint8Array.of(255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255), width: 3, height: 1 };
    expect([...(await inferenceSegmentor(segmentor, rgba)).labels.data]).to.deep.equal([2, 1, 0]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('bytes that are no image are one error', async () => {
    const segmentor = await handle();
    expect(await errorMessage(() => inferenceSegmentor(segmentor, Uint8Array.of(1, 2, 3, 4)))).to.match(
      /^cannot decode the 4 bytes of image data given to inferenceSegmentor: /,
    );
  });
});
