import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { colorizeLabels, defaultPalette, expandImageArguments, globToRegExp, resolvePalette } from '../src/tools/prediction-files';
import { errorMessage, tempTree } from '../src/testing';

describe('prediction files (infer inputs and palettes)', () => {
  it('globs: * and ? stay in a folder, **/ spans folders, [..] is a class', () => {
    expect(globToRegExp('*.png').test('a.png')).to.equal(true);
    expect(globToRegExp('*.png').test('x/a.png')).to.equal(false);
    expect(globToRegExp('**/*.png').test('a.png')).to.equal(true);
    expect(globToRegExp('**/*.png').test('x/y/a.png')).to.equal(true);
    expect(globToRegExp('img_?.jp[e]g').test('img_1.jpeg')).to.equal(true);
    expect(globToRegExp('img_?.jp[e]g').test('img_12.jpeg')).to.equal(false);
    expect(globToRegExp('a+b.png').test('a+b.png')).to.equal(true);
  });

  it('expands files, folders (their images, sorted) and globs; names what matched nothing', async () => {
    const root = tempTree({ 'imgs/b.png': 'x', 'imgs/a.jpg': 'x', 'imgs/notes.txt': 'x', 'imgs/sub/c.png': 'x', 'empty/readme.md': 'x' });
    try {
      expect(expandImageArguments([path.join(root, 'imgs')])).to.deep.equal([path.join(root, 'imgs', 'a.jpg'), path.join(root, 'imgs', 'b.png')]);
      expect(expandImageArguments([`${root}/imgs/**/*.png`])).to.deep.equal([`${root}/imgs/b.png`, `${root}/imgs/sub/c.png`]);
      expect(await errorMessage(() => expandImageArguments([path.join(root, 'empty')]))).to.contain(`infer: folder ${path.join(root, 'empty')} holds no images`);
      expect(await errorMessage(() => expandImageArguments([`${root}/imgs/*.gif`]))).to.equal(`infer: no file matches ${root}/imgs/*.gif`);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('palette order: explicit, checkpoint meta.PALETTE, meta.config dataset, the config, generated', () => {
    const explicit = { palette: [[1, 2, 3] as const], source: '--palette x' };
    expect(resolvePalette({ explicit, checkpointMeta: { PALETTE: [[9, 9, 9]] }, numClasses: 1 })).to.equal(explicit);
    expect(resolvePalette({ checkpointMeta: { CLASSES: ['a', 'b'], PALETTE: [[9, 9, 9], [8, 8, 8]] }, numClasses: 2 })).to.deep.equal({
      classes: ['a', 'b'], palette: [[9, 9, 9], [8, 8, 8]], source: 'checkpoint meta.PALETTE',
    });
    const cityscapes = resolvePalette({ checkpointMeta: { config: { data: { test: { type: 'CityscapesDataset' } } } }, numClasses: 19 });
    expect(cityscapes.palette[18]).to.deep.equal([119, 11, 32]);
    expect(cityscapes.classes![18]).to.equal('bicycle');
    const fromConfig = resolvePalette({ checkpointMeta: null, config: { data: { val: { type: 'X', palette: [[5, 6, 7]], classes: ['only'] } } }, numClasses: 1 });
    expect(fromConfig).to.deep.equal({ classes: ['only'], palette: [[5, 6, 7]], source: 'config' });
    const generated = resolvePalette({ numClasses: 4 });
    expect(generated.palette).to.deep.equal(defaultPalette(4));
    // Hue 0 at value 0.95, chroma 0.7125: (242, 61, 61) after rounding; all four distinct.
    expect(generated.palette[0]).to.deep.equal([242, 61, 61]);
    expect(new Set(generated.palette.map((c) => c.join())).size).to.equal(4);
  });

  it('colours a label map; labels outside the palette (255) stay black', () => {
    const out = colorizeLabels({ data: Int32Array.of(0, 1, 255), shape: [1, 3] }, [[10, 20, 30], [40, 50, 60]]);
    expect(out.shape).to.deep.equal([1, 3, 3]);
    expect([...out.data]).to.deep.equal([10, 20, 30, 40, 50, 60, 0, 0, 0]);
  });
});
