import { expect } from 'chai';
import { MetricAccumulator, classTableRows, fscoreMetric, formatMetricTables, intersectAndUnion } from '../src/evaluation';
import { SegkitError } from '../src/errors';

// A 2×3 image: the pixel at (1,1) is ignored; class 2 is predicted once but never in the GT.
//   gt   = 0 0 1 / 1 255 0        pred = 0 1 1 / 2 0 0
// Kept pixels (gt, pred): (0,0) (0,1) (1,1) (1,2) (0,0)
//   intersect = [2, 1, 0], pred = [2, 2, 1], label = [3, 2, 0], union = [3, 3, 1]
const gt = Uint8Array.of(0, 0, 1, 1, 255, 0);
const pred = Int32Array.of(0, 1, 1, 2, 0, 0);
const classNames = ['bg', 'fg', 'x'];

function accumulated(): MetricAccumulator {
  const accumulator = new MetricAccumulator(3);
  accumulator.add(pred, gt);
  return accumulator;
}

describe('evaluation metrics', () => {
  it('intersectAndUnion counts per class, skipping ignored pixels', () => {
    const stats = intersectAndUnion(pred, gt, 3, 255);
    expect([...stats.intersect]).to.deep.equal([2, 1, 0]);
    expect([...stats.pred]).to.deep.equal([2, 2, 1]);
    expect([...stats.label]).to.deep.equal([3, 2, 0]);
    expect([...stats.union]).to.deep.equal([3, 3, 1]);
  });

  it('GT values outside [0, numClasses) other than the ignore index drop out of the GT histogram only (torch.histc)', () => {
    const stats = intersectAndUnion(Uint8Array.of(1, 7, 0), Uint8Array.of(7, 7, 0), 2, 255);
    expect([...stats.label]).to.deep.equal([1, 0]);
    expect([...stats.pred]).to.deep.equal([1, 1]);
    expect([...stats.intersect]).to.deep.equal([1, 0]);
  });

  it('mIoU: aAcc, nan-mean IoU (absent-from-GT class counts as 0) and mAcc (0/0 class skipped)', () => {
    const results = accumulated().compute(['mIoU'], { classNames });
    expect(Object.keys(results)).to.deep.equal(['aAcc', 'mIoU', 'mAcc', 'IoU.bg', 'IoU.fg', 'IoU.x', 'Acc.bg', 'Acc.fg', 'Acc.x']);
    expect(results.aAcc).to.be.closeTo(0.6, 1e-12); // 3 / 5
    expect(results.mIoU).to.be.closeTo(0.3333, 1e-12); // (2/3 + 1/3 + 0) / 3, rounded to 33.33 %
    expect(results.mAcc).to.be.closeTo(0.5833, 1e-12); // (2/3 + 1/2) / 2
    expect(results['IoU.bg']).to.be.closeTo(0.6667, 1e-12);
    expect(results['IoU.x']).to.be.closeTo(0, 1e-12);
    expect(results['Acc.fg']).to.be.closeTo(0.5, 1e-12);
    expect(results['Acc.x']).to.be.NaN;
  });

  it('a class absent from both prediction and GT is NaN and left out of the mean', () => {
    const accumulator = new MetricAccumulator(4);
    accumulator.add(pred, gt);
    const results = accumulator.compute('mIoU');
    expect(results['IoU.3']).to.be.NaN;
    expect(results.mIoU).to.be.closeTo(0.3333, 1e-12);
  });

  it('mDice gives Dice and Acc; mFscore gives Fscore, Precision and Recall', () => {
    const results = accumulated().compute(['mDice', 'mFscore'], { classNames });
    expect(Object.keys(results).slice(0, 6)).to.deep.equal(['aAcc', 'mDice', 'mAcc', 'mFscore', 'mPrecision', 'mRecall']);
    expect(results['Dice.bg']).to.be.closeTo(0.8, 1e-12); // 2·2 / (2 + 3)
    expect(results['Dice.fg']).to.be.closeTo(0.5, 1e-12); // 2·1 / (2 + 2)
    expect(results['Dice.x']).to.be.closeTo(0, 1e-12); // 0 / (1 + 0)
    expect(results.mDice).to.be.closeTo(0.4333, 1e-12);
    expect(results.mPrecision).to.be.closeTo(0.5, 1e-12); // (1 + 0.5 + 0) / 3
    expect(results.mRecall).to.be.closeTo(0.5833, 1e-12);
    expect(results['Fscore.bg']).to.be.closeTo(0.8, 1e-12); // 2·1·(2/3) / (1 + 2/3)
    expect(results['Fscore.x']).to.be.NaN; // recall 0/0
    expect(results.mFscore).to.be.closeTo(0.65, 1e-12); // (0.8 + 0.5) / 2
  });

  it('beta weighs recall in the F-score', () => {
    const results = accumulated().compute([fscoreMetric(2)], { classNames });
    // bg: P = 1, R = 2/3 → 5·(2/3) / (4 + 2/3) = 0.714286; fg: P = R = 0.5 → 0.5
    expect(results['Fscore.bg']).to.be.closeTo(0.7143, 1e-12);
    expect(results.mFscore).to.be.closeTo(0.6071, 1e-12);
  });

  it('nanToNum replaces NaN classes before averaging', () => {
    const results = accumulated().compute(['mIoU', 'mFscore'], { classNames, nanToNum: 0 });
    expect(results['Acc.x']).to.be.closeTo(0, 1e-12);
    expect(results.mAcc).to.be.closeTo(0.3889, 1e-12); // (2/3 + 1/2 + 0) / 3
    expect(results.mRecall).to.be.closeTo(0.3889, 1e-12);
    expect(results.mFscore).to.be.closeTo(0.4333, 1e-12); // (0.8 + 0.5 + 0) / 3
  });

  it('accumulating images equals evaluating them as one', () => {
    const gt2 = Uint8Array.of(2, 2, 1, 0);
    const pred2 = Uint8Array.of(2, 1, 1, 255);
    const split = new MetricAccumulator(3);
    split.add(pred, gt);
    split.add(pred2, gt2);
    const joined = new MetricAccumulator(3);
    joined.add(Int32Array.of(...pred, ...pred2), Int32Array.of(...gt, ...gt2));
    expect(split.count).to.equal(2);
    expect(split.stats()).to.deep.equal(joined.stats());
    expect([...split.stats().intersect]).to.deep.equal([2, 2, 1]);
    expect(split.compute(['mIoU', 'mDice', 'mFscore'])).to.deep.equal(joined.compute(['mIoU', 'mDice', 'mFscore']));
    split.reset();
    expect(split.count).to.equal(0);
    expect([...split.stats().label]).to.deep.equal([0, 0, 0]);
  });

  it('rejects unknown metrics, naming the allowed ones, and mismatched class names', () => {
    expect(() => accumulated().compute(['mIoU', 'mAP'])).to.throw(SegkitError, 'expected one or more of mIoU, mDice, mFscore, got mAP');
    expect(() => accumulated().compute(['mIoU'], { classNames: ['a'] })).to.throw(SegkitError, 'expected 3 class names, got 1');
    expect(() => intersectAndUnion(pred, Uint8Array.of(0), 3)).to.throw(SegkitError, 'prediction has 6 pixels');
  });

  it('formats the per-class and summary tables like PrettyTable', () => {
    const tables = formatMetricTables(accumulated().compute(['mIoU'], { classNames }), classNames);
    expect(tables.perClass).to.equal(
      [
        '+-------+-------+-------+',
        '| Class |  IoU  |  Acc  |',
        '+-------+-------+-------+',
        '|   bg  | 66.67 | 66.67 |',
        '|   fg  | 33.33 | 50.00 |',
        '|   x   |  0.00 |  nan  |',
        '+-------+-------+-------+',
      ].join('\n'),
    );
    expect(tables.summary).to.equal(
      ['+-------+-------+-------+', '|  aAcc |  mIoU |  mAcc |', '+-------+-------+-------+', '| 60.00 | 33.33 | 58.33 |', '+-------+-------+-------+'].join('\n'),
    );
  });

  it('classTableRows gives one row of percent values per class, columns in metric order', () => {
    const rows = classTableRows(accumulated().compute(['mDice', 'mIoU'], { classNames }), classNames);
    expect(rows).to.have.length(3);
    expect(Object.keys(rows[0]!)).to.deep.equal(['Class', 'Dice', 'Acc', 'IoU']);
    expect(rows[0]).to.deep.equal({ Class: 'bg', Dice: 80, Acc: 66.67, IoU: 66.67 });
    expect(rows[2]!.Acc).to.be.NaN;
  });
});
