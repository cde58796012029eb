import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { renderOverlay } from '../src/tools/overlay';
import { writePng } from '../src/io/image';
import { SegkitError } from '../src/errors';
import { tempTree } from '../src/testing';

interface DecodedPng {
  width: number;
  height: number;
  channels: number;
  depth: number;
  data: Uint8Array;
}
const fastPng = require('fast-png') as { decode(data: Uint8Array): DecodedPng };

const palette = [
  [120, 120, 120],
  [6, 230, 230],
];

describe('prediction overlays', () => {
  // A 1×3 image; labels: class 1, ignore (255), class 0.
  const image = { data: Uint8Array.of(100, 50, 201, 10, 20, 30, 0, 255, 7), shape: [1, 3, 3] };
  const labels = Uint8Array.of(1, 255, 0);

  it('blends img·(1−opacity) + colour·opacity, truncating; ignored pixels unchanged', () => {
    const out = renderOverlay(image, labels, palette);
    expect(out.shape).to.deep.equal([1, 3, 3]);
    // (100+6)/2 = 53, (50+230)/2 = 140, (201+230)/2 = 215.5 → 215; ignore pixel as is; (0+120)/2, (255+120)/2 = 187.5 → 187, (7+120)/2 = 63.5 → 63
    expect([...out.data]).to.deep.equal([53, 140, 215, 10, 20, 30, 60, 187, 63]);
    expect([...image.data]).to.deep.equal([100, 50, 201, 10, 20, 30, 0, 255, 7]); // input untouched
  });

  it('uses the opacity and leaves out-of-palette labels unchanged', () => {
    const out = renderOverlay(image, Int32Array.of(0, 2, -1), palette, 0.25);
    // 100·0.75 + 120·0.25 = 105, 50·0.75 + 30 = 67.5 → 67, 201·0.75 + 30 = 180.75 → 180
    expect([...out.data]).to.deep.equal([105, 67, 180, 10, 20, 30, 0, 255, 7]);
  });

  it('rejects mismatched shapes and bad opacity', () => {
    expect(() => renderOverlay(image, Uint8Array.of(0, 1), palette)).to.throw(SegkitError, 'label map has 2 pixels but the image is 1×3');
    expect(() => renderOverlay(image, labels, palette, 0)).to.throw(SegkitError, 'expected opacity in (0, 1]');
    expect(() => renderOverlay({ data: new Uint8Array(3), shape: [1, 3] }, labels, palette)).to.throw(SegkitError, 'expected an RGB image');
  });

  it('writes a raw label map as 8-bit grayscale whose values are the class indices', () => {
    const file = path.join(tempTree({}), 'pred/0001.png');
    writePng(file, { data: Int32Array.of(0, 1, 18, 255, 3, 0), shape: [2, 3] });
    const decoded = fastPng.decode(fs.readFileSync(file));
    expect([decoded.width, decoded.height, decoded.channels, decoded.depth]).to.deep.equal([3, 2, 1, 8]);
    expect([...decoded.data]).to.deep.equal([0, 1, 18, 255, 3, 0]);
  });

  it('writes an RGB image', () => {
    const file = path.join(tempTree({}), 'overlay.png');
    writePng(file, renderOverlay(image, labels, palette));
    const decoded = fastPng.decode(fs.readFileSync(file));
    expect([decoded.width, decoded.height, decoded.channels]).to.deep.equal([3, 1, 3]);
    expect([...decoded.data]).to.deep.equal([53, 140, 215, 10, 20, 30, 60, 187, 63]);
  });

  it('rejects label values an 8-bit PNG cannot hold', () => {
    expect(() => writePng('x.png', { data: Int32Array.of(0, 256), shape: [1, 2] })).to.throw(SegkitError, 'x.png: an 8-bit PNG holds values 0..255, got 256');
  });
});
