import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { expect } from 'chai';
import sharp from 'sharp';
import { readLabelMap } from '@segkit/core';
import { mapLabels } from '../src';
import { build, errorOf, noRandom, rowsOf, tempDir } from './helpers';

/** A palette PNG of the given bit depth holding `indices` (what Pillow would return in mode 'P'). */
function palettePng(indices: number[][], depth: 4 | 8, palette: [number, number, number][]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(zlib.crc32(body) >>> 0, 8 + data.length);
    return out;
  };
  const height = indices.length;
  const width = indices[0]!.length;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = 3; // palette colour type
  const rowBytes = Math.ceil((width * depth) / 8);
  const raw = Buffer.alloc(height * (rowBytes + 1));
  indices.forEach((row, y) => {
    row.forEach((v, x) => {
      const at = y * (rowBytes + 1) + 1 + Math.floor((x * depth) / 8);
      raw[at] |= depth === 8 ? v : v << (4 - ((x * depth) % 8));
    });
  });
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('PLTE', Buffer.from(palette.flat())),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const fixtures = path.resolve(__dirname, '../../test/fixtures');

describe('LoadImageFromFile', () => {
  it('decodes to [H,W,3] uint8 in BGR order and records filename and shapes', async () => {
    const dir = tempDir();
    // RGB pixels: red, (0,128,255)
    await sharp(Buffer.from([255, 0, 0, 0, 128, 255]), { raw: { width: 2, height: 1, channels: 3 } }).png().toFile(path.join(dir, 'a.png'));
    const load = await build({ type: 'LoadImageFromFile' });
    const results = await load.apply({ img_info: { filename: 'a.png' }, img_prefix: dir }, noRandom);
    expect(Array.from(results.img!.data)).to.deep.equal([0, 0, 255, 255, 128, 0]);
    expect(results.img!.shape).to.deep.equal([1, 2, 3]);
    expect(results).to.include({ filename: path.join(dir, 'a.png'), ori_filename: 'a.png', scale_factor: 1 });
    expect(results.ori_shape).to.deep.equal([1, 2, 3]);
    expect(results.pad_shape).to.deep.equal([1, 2, 3]);
  });

  it('a missing file is one error naming it', async () => {
    const load = await build({ type: 'LoadImageFromFile' });
    const message = await errorOf(() => load.apply({ img_info: { filename: 'nope.png' }, img_prefix: '/no/such/dir' }, noRandom));
    expect(message).to.equal('LoadImageFromFile: cannot read /no/such/dir/nope.png (file not found)');
  });
});

describe('LoadAnnotations', () => {
  it('palette PNGs (4- and 8-bit) come back as indices, not colours', async () => {
    const dir = tempDir();
    const indices = [
      [0, 1, 2, 3, 15],
      [5, 5, 0, 1, 2],
    ];
    const palette: [number, number, number][] = Array.from({ length: 16 }, (_, i) => [200 - i, 10 * i, 7]);
    fs.writeFileSync(path.join(dir, 'p4.png'), palettePng(indices, 4, palette));
    fs.writeFileSync(path.join(dir, 'p8.png'), palettePng(indices, 8, palette));
    const load = await build({ type: 'LoadAnnotations' });
    for (const file of ['p4.png', 'p8.png']) {
      const results = await load.apply({ ann_info: { seg_map: file }, seg_prefix: dir, seg_fields: [] }, noRandom);
      expect(rowsOf(results.gt_semantic_seg!)).to.deep.equal(indices);
      expect(results.seg_fields).to.deep.equal(['gt_semantic_seg']);
    }
  });

  it("MMSegmentation's 4-bit palette fixture gives indices {0, 2} with the counts in its packed bytes", async () => {
    const seg = await readLabelMap(path.join(fixtures, 'pseudo_00000_gt.png'));
    expect(seg.shape).to.deep.equal([128, 256]);
    const counts = new Map<number, number>();
    for (const v of seg.data) counts.set(v, (counts.get(v) ?? 0) + 1);
    // Packed bytes 0x00 ×14734, 0x02 ×55, 0x20 ×55, 0x22 ×1540 → index 0: 2·14734+55+55, index 2: 55+55+2·1540.
    expect([...counts.entries()].sort()).to.deep.equal([[0, 29578], [2, 3190]]);
  });

  it('reduce_zero_label: 0 → 255, k → k−1, 255 stays 255 (uint8 arithmetic)', async () => {
    const values = Uint8Array.from([0, 1, 2, 19, 254, 255]);
    mapLabels(values, true);
    expect(Array.from(values)).to.deep.equal([255, 0, 1, 18, 253, 255]);
  });

  it('label_map remaps from a copy of the original values (no chained remapping), removed classes → 255', async () => {
    const values = Uint8Array.from([0, 1, 2, 255]);
    mapLabels(values, false, { 0: 1, 1: 0, 2: 255 });
    expect(Array.from(values)).to.deep.equal([1, 0, 255, 255]);
  });

  it('reads grey PNGs as values and applies the results label_map', async () => {
    const dir = tempDir();
    await sharp(Buffer.from([0, 1, 2, 255]), { raw: { width: 4, height: 1, channels: 1 } }).png().toFile(path.join(dir, 'g.png'));
    const load = await build({ type: 'LoadAnnotations', reduce_zero_label: true });
    const results = await load.apply({ ann_info: { seg_map: 'g.png' }, seg_prefix: dir, label_map: { 0: 255, 1: 0 } }, noRandom);
    // reduce: [255, 0, 1, 255]; then map 0→255, 1→0
    expect(rowsOf(results.gt_semantic_seg!)).to.deep.equal([[255, 255, 0, 255]]);
  });

  it('a colour label image is a clear error', async () => {
    const dir = tempDir();
    await sharp(Buffer.from([10, 20, 30]), { raw: { width: 1, height: 1, channels: 3 } }).png().toFile(path.join(dir, 'c.png'));
    const message = await errorOf(() => readLabelMap(path.join(dir, 'c.png')));
    expect(message).to.contain('is a colour image');
  });
});
