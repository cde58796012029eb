import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { EventBus, type EventOf, type RunnerView } from '@segkit/core';
import { JsonLoggerHook, ProgressBarHook, TextLoggerHook, formatEta, formatGroupLrs } from '../src';

function iterEnd(iter: number, loss: number, stepTime: number): EventOf<'iter:end'> {
  return {
    type: 'iter:end', iter, maxIters: 40000,
    losses: { 'decode.loss_ce': loss, 'decode.acc_seg': 90 + iter, loss: loss * 2 },
    lrs: [{ group: 0, lr: 0.01 }, { group: 1, key: 'head', lr: 0.1 }, { group: 2, lr: 0.01 }],
    dataTime: 0.01 * iter, stepTime, memory: { numTensors: 10, numBytes: 100, rssMB: 512 },
  };
}

function fakeRunner(workDir: string): RunnerView {
  return { workDir, timestamp: '20261128_030000', config: {}, maxIters: 40000, iter: 0 } as unknown as RunnerView;
}

describe('hooks-logging', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-log-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('formats lrs of every distinct group and the ETA', () => {
    expect(formatGroupLrs([{ group: 0, lr: 0.01 }, { group: 1, key: 'head', lr: 0.1 }])).to.equal('1.000e-02 (head 1.000e-01)');
    expect(formatGroupLrs([{ group: 0, lr: 0.0054052786 }])).to.equal('5.405e-03');
    expect(formatGroupLrs([{ group: 0, lr: 12345 }])).to.equal('1.235e+04');
    expect(formatEta(3725)).to.equal('1:02:05');
    expect(formatEta(90000)).to.equal('1 day, 1:00:00');
  });

  it('TextLoggerHook prints window means every interval, MMSegmentation style', () => {
    const lines: string[] = [];
    const hook = new TextLoggerHook({ by_epoch: false, to_file: true, ignore_last: true, reset_flag: false }, 2, (line) => lines.push(line));
    const bus = new EventBus();
    hook.observe(bus, fakeRunner(dir));
    bus.emit(iterEnd(1, 1.0, 0.2));
    expect(lines).to.have.length(0);
    bus.emit(iterEnd(2, 0.5, 0.4));
    hook.afterRun();
    // Means over iterations 1-2: loss_ce 0.75, acc 91.5, loss 1.5, time 0.3, data_time 0.015; eta = 0.3 s × 39998.
    expect(lines).to.deep.equal([
      'Iter [2/40000]\tlr: 1.000e-02 (head 1.000e-01), eta: 3:19:59, time: 0.300, data_time: 0.015, memory: 512, decode.loss_ce: 0.7500, decode.acc_seg: 91.5000, loss: 1.5000',
    ]);
    expect(fs.readFileSync(path.join(dir, '20261128_030000.log'), 'utf8')).to.equal(`${lines[0]}\n`);
  });

  it('JsonLoggerHook writes one object per interval and per evaluation', () => {
    const hook = new JsonLoggerHook(2);
    const bus = new EventBus();
    hook.observe(bus, fakeRunner(dir));
    bus.emit(iterEnd(1, 1.0, 0.2));
    bus.emit(iterEnd(2, 0.5, 0.4));
    bus.emit({ type: 'eval:end', iter: 2, metrics: { aAcc: 0.9, mDice: 0.8 }, classTable: [] });
    hook.afterRun();
    const records = fs.readFileSync(hook.logPath, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(records).to.deep.equal([
      { mode: 'train', iter: 2, lr: 0.01, 'lr.head': 0.1, memory: 512, data_time: 0.015, time: 0.3, 'decode.loss_ce': 0.75, 'decode.acc_seg': 91.5, loss: 1.5 },
      { mode: 'val', iter: 2, aAcc: 0.9, mDice: 0.8 },
    ]);
  });

  it('ProgressBarHook draws core\'s bar with the loss; logger lines go above it, never on its line', () => {
    const chunks: string[] = [];
    const stream = { isTTY: true, columns: 120, write: (chunk: string | Uint8Array) => (chunks.push(String(chunk)), true) };
    const hook = new ProgressBarHook({ width: 10, force: false }, stream);
    const bus = new EventBus();
    const subscription = hook.observe(bus)!;
    // The bar's redraw timer must not outlive a failed assertion.
    try {
      bus.emit({ type: 'run:start', maxIters: 40000, startIter: 20000, workDir: dir, config: {}, backend: 'cpu' });
      bus.emit(iterEnd(20001, 0.25, 0.1));
      // A logger line printed on the same stream: the bar's line is cleared first, the bar drawn again after it.
      chunks.length = 0;
      stream.write('Iter [20001/40000]\tlr: 1.000e-02\n');
      expect(chunks[0]).to.equal('\r\x1b[2K');
      expect(chunks[1]).to.equal('Iter [20001/40000]\tlr: 1.000e-02\n');
      const redrawn = chunks.slice(2).join('');
      expect(redrawn).to.contain('train [=====     ] 20001/40000 iters | 50% | eta');
      expect(redrawn).to.contain('loss 0.5000');
      bus.emit({ type: 'run:end', iter: 20001, workDir: dir });
      expect(chunks[chunks.length - 1]).to.match(/^train: 20001\/40000 iters \(50%\), elapsed \d+:\d\d:\d\d, eta .*, loss 0\.5000\n$/);
    } finally {
      hook.afterRun();
      subscription.unsubscribe();
    }
  });

  it('ProgressBarHook draws nothing when the stream is not a terminal, unless forced', () => {
    const stream = { isTTY: false, write: () => true };
    expect(new ProgressBarHook({ width: 30, force: false }, stream).observe(new EventBus())).to.equal(undefined);
    expect(new ProgressBarHook({ width: 30, force: true }, stream).observe(new EventBus())).to.not.equal(undefined);
  });
});
