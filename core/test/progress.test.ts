import { expect } from 'chai';
import { formatDuration, formatProgressLine, startProgress, type ProgressStream } from '../src/tools/progress';

/** A stream that records what is written to it. */
function fakeStream(isTTY: boolean): ProgressStream & { text: () => string; chunks: string[] } {
  const chunks: string[] = [];
  return {
    isTTY,
    columns: 120,
    chunks,
    text: () => chunks.join(''),
    write(chunk: string | Uint8Array) {
      chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    },
  };
}

describe('progress (tools/progress)', () => {
  it('formats durations and plain lines', () => {
    expect(formatDuration(3725)).to.equal('1:02:05');
    expect(formatDuration(90000)).to.equal('1 day, 1:00:00');
    expect(formatDuration(Number.NaN)).to.equal('0:00:00');
    // 5 of 20 in 10 s: 2 s each, 15 left → eta 30 s.
    expect(formatProgressLine('test', 5, 20, 'images', 10)).to.equal('test: 5/20 images (25%), elapsed 0:00:10, eta 0:00:30');
    expect(formatProgressLine('synth', 0, 4, undefined, 0, 'loss 1.0')).to.equal('synth: 0/4 (0%), elapsed 0:00:00, loss 1.0');
  });

  it('without a terminal prints one plain line per 10 % step, and nothing more on stop', () => {
    const stream = fakeStream(false);
    let now = 0;
    const progress = startProgress({ label: 'test', total: 20, unit: 'images', stream, clock: () => now });
    for (let i = 1; i <= 20; i++) {
      now += 1;
      progress.increment();
    }
    progress.stop();
    const lines = stream.text().trimEnd().split('\n');
    expect(lines).to.have.length(10);
    expect(lines[0]).to.equal('test: 2/20 images (10%), elapsed 0:00:02, eta 0:00:18');
    expect(lines[4]).to.equal('test: 10/20 images (50%), elapsed 0:00:10, eta 0:00:10');
    expect(lines[9]).to.equal('test: 20/20 images (100%), elapsed 0:00:20, eta 0:00:00');
  });

  it('without a terminal also prints every lineEverySeconds, and a last line on stop', () => {
    const stream = fakeStream(false);
    let now = 0;
    const progress = startProgress({ label: 'convert', total: 1000, stream, clock: () => now, lineEverySeconds: 5 });
    now = 4;
    progress.update(3); // 0 % step, 4 s: no line
    now = 5;
    progress.update(4); // 5 s since start: a line
    now = 6;
    progress.update(7);
    progress.stop(); // 7 was not printed: printed on stop
    expect(stream.text()).to.equal(
      'convert: 4/1000 (0%), elapsed 0:00:05, eta 0:20:45\n' + 'convert: 7/1000 (0%), elapsed 0:00:06, eta 0:14:11\n',
    );
  });

  it('quiet and silent write nothing', () => {
    const stream = fakeStream(true);
    const quiet = startProgress({ label: 'test', total: 2, stream, quiet: true });
    quiet.increment();
    quiet.stop();
    const silent = startProgress({ label: 'train', total: 2, stream: fakeStream(false), whenNotTty: 'silent' });
    silent.increment();
    silent.stop();
    expect(stream.chunks).to.deep.equal([]);
  });

  it('on a terminal draws a bar; log lines go above it on their own line; the writes are restored on stop', () => {
    const bar = fakeStream(true);
    const stdout = fakeStream(true);
    const originalWrite = stdout.write;
    let now = 0;
    const progress = startProgress({ label: 'test', total: 20, unit: 'images', stream: bar, interceptStreams: [stdout], clock: () => now, barWidth: 10 });
    now = 10;
    progress.update(10, 'loss 0.5000');
    bar.chunks.length = 0;
    stdout.write('Iter [10/40] lr: 1e-2\n');
    stdout.write('partial');
    // Each log write: the bar's line cleared first, then the bar drawn again below the text.
    expect(bar.chunks[0]).to.equal('\r\x1b[2K');
    expect(bar.text()).to.contain('test [=====     ] 10/20 images | 50% | eta');
    expect(bar.text()).to.contain('loss 0.5000');
    // The text itself is untouched, and a partial line is ended so the bar never joins it.
    expect(stdout.chunks).to.deep.equal(['Iter [10/40] lr: 1e-2\n', 'partial', '\n']);
    now = 20;
    progress.update(20);
    progress.stop();
    expect(stdout.write).to.equal(originalWrite);
    expect(bar.chunks[bar.chunks.length - 1]).to.equal('test: 20/20 images (100%), elapsed 0:00:20, eta 0:00:00\n');
    stdout.write('after\n');
    expect(stdout.chunks[stdout.chunks.length - 1]).to.equal('after\n');
  });

  it('a nested bar (evaluation inside training) takes over the line and gives it back', () => {
    const stream = fakeStream(true);
    const outer = startProgress({ label: 'train', total: 100, stream, interceptStreams: [], barWidth: 10 });
    outer.update(50);
    const inner = startProgress({ label: 'evaluation', total: 4, unit: 'images', stream, interceptStreams: [], barWidth: 10, clock: () => 0 });
    inner.update(4);
    stream.chunks.length = 0;
    inner.stop();
    const afterInner = stream.text();
    expect(afterInner).to.contain('evaluation: 4/4 images (100%)');
    // The outer bar is drawn again, from where it was.
    expect(afterInner).to.contain('train [=====     ] 50/100');
    outer.stop();
  });
});
