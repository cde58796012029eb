import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { plotLogCurves, readLogCurves } from '../src/tools/plot';
import { SegkitError } from '../src/errors';
import { tempTree } from '../src/testing';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** A log like the JSON-lines logger writes: a header, 20 training lines (every 50 iters), evaluation every 250. */
function writeLog(): string {
  const lines: object[] = [{ env_info: 'node 20', config: 'fcn_unet_s5-d16.py', seed: 0 }];
  for (let iter = 50; iter <= 1000; iter += 50) {
    const ce = 1 / Math.sqrt(iter / 50);
    lines.push({ mode: 'train', iter, lr: 0.01 * (1 - iter / 1000) ** 0.9 + 1e-4, 'decode.loss_ce': ce, 'decode.loss_dice': ce / 2, loss: 1.5 * ce });
    if (iter % 250 === 0) lines.push({ mode: 'val', iter, mIoU: 0.5 + iter / 4000, mDice: 0.6 + iter / 4000, 'IoU.vessel': 0.4 });
  }
  const dir = tempTree({ 'work/log.json': lines.map((line) => JSON.stringify(line)).join('\n') + '\n' });
  return path.join(dir, 'work/log.json');
}

function polylinePoints(svg: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of svg.matchAll(/<polyline data-key="([^"]+)" points="([^"]*)"/g)) counts.set(match[1]!, match[2]!.trim().split(/\s+/).length);
  return counts;
}

describe('loss/metric curves', () => {
  it('reads one series per key from data lines, skipping the header', () => {
    const [ce, miou] = readLogCurves(writeLog(), ['decode.loss_ce', 'mIoU']);
    expect(ce!.points).to.have.length(20);
    expect(ce!.points[1]).to.deep.equal({ iter: 100, value: 1 / Math.sqrt(2) });
    expect(miou!.points.map((p) => p.iter)).to.deep.equal([250, 500, 750, 1000]);
  });

  it('writes an SVG with a polyline per key, the right number of points, a legend and the title', async () => {
    const log = writeLog();
    const out = path.join(path.dirname(log), 'plots/curves.svg');
    expect(await plotLogCurves(log, { keys: ['decode.loss_ce', 'loss', 'mIoU'], out, title: 'UNet <DRIVE>' })).to.equal(out);
    const svg = fs.readFileSync(out, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="800" height="500"')).to.equal(true);
    expect(polylinePoints(svg)).to.deep.equal(new Map([['decode.loss_ce', 20], ['loss', 20], ['mIoU', 4]]));
    for (const key of ['decode.loss_ce', 'loss', 'mIoU']) expect(svg).to.include(`>${key}</text>`);
    expect(svg).to.include('>UNet &lt;DRIVE&gt;</text>');
    expect(svg).to.include('>iter</text>');
    const colours = [...svg.matchAll(/<polyline [^>]*stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
    expect(new Set(colours).size).to.equal(3);
  });

  it('renders a PNG of the requested size', async function () {
    this.timeout(20000);
    const log = writeLog();
    const out = path.join(path.dirname(log), 'curves.png');
    await plotLogCurves(log, { keys: ['decode.loss_ce', 'decode.loss_dice', 'loss', 'mDice'], out, title: 'training curves', width: 640, height: 400 });
    const png = fs.readFileSync(out);
    expect([...png.subarray(0, 8)]).to.deep.equal(PNG_SIGNATURE);
    // IHDR: width and height as big-endian uint32 at bytes 16 and 20.
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).to.deep.equal([640, 400]);
  });

  it('clear errors: missing file, unknown key (with the available keys), no data lines, bad extension', async () => {
    const log = writeLog();
    const missing = path.join(path.dirname(log), 'nope.json');
    await expectSegkitError(plotLogCurves(missing, { keys: ['loss'], out: 'x.svg' }), `${missing}: no such log file`);
    await expectSegkitError(
      plotLogCurves(log, { keys: ['loss', 'decode.loss_cee'], out: 'x.svg' }),
      'key "decode.loss_cee" is in no log line (did you mean "decode.loss_ce"?); available keys: lr, decode.loss_ce, decode.loss_dice, loss, mIoU, mDice, IoU.vessel',
    );
    const headerOnly = path.join(path.dirname(log), 'header.json');
    fs.writeFileSync(headerOnly, '{"env_info":"node"}\n');
    await expectSegkitError(plotLogCurves(headerOnly, { keys: ['loss'], out: 'x.svg' }), 'no training or evaluation lines');
    await expectSegkitError(plotLogCurves(log, { keys: ['loss'], out: 'x.jpg' }), 'x.jpg: expected an output file ending in .svg or .png');
  });

  it('skips a last line cut off by a kill with one warning, and plots the lines before it', async () => {
    const log = writeLog();
    const complete = fs.readFileSync(log, 'utf8');
    const cut = '{"mode": "train", "iter": 1050, "lr": 0.0001, "decode.lo';
    fs.writeFileSync(log, complete + cut);
    const warnings: string[] = [];
    const [ce] = readLogCurves(log, ['decode.loss_ce'], (message) => warnings.push(message));
    expect(ce!.points).to.have.length(20);
    expect(ce!.points[19]).to.deep.equal({ iter: 1000, value: 1 / Math.sqrt(20) });
    // header + 20 training + 4 evaluation lines, then the cut one
    expect(warnings).to.deep.equal([`${log}:26: skipped the last line, which is cut off (the run was probably stopped while writing it): ${JSON.stringify(cut)}`]);
    const out = path.join(path.dirname(log), 'cut.svg');
    const plotWarnings: string[] = [];
    await plotLogCurves(log, { keys: ['loss', 'mIoU'], out, warn: (message) => plotWarnings.push(message) });
    expect(polylinePoints(fs.readFileSync(out, 'utf8'))).to.deep.equal(new Map([['loss', 20], ['mIoU', 4]]));
    expect(plotWarnings).to.have.length(1);
    // a cut line followed only by blank lines is still the last line
    fs.writeFileSync(log, `${complete}{"mode": "val", "iter"\n\n`);
    const blankAfter: string[] = [];
    expect(readLogCurves(log, ['mIoU'], (message) => blankAfter.push(message))[0]!.points).to.have.length(4);
    expect(blankAfter).to.have.length(1);
    expect(blankAfter[0]).to.match(/log\.json:26: skipped the last line/);
  });

  it('a cut line in the middle of the log is still an error naming file:line', async () => {
    const log = writeLog();
    const lines = fs.readFileSync(log, 'utf8').split('\n');
    lines[3] = lines[3]!.slice(0, 30);
    fs.writeFileSync(log, lines.join('\n'));
    const warnings: string[] = [];
    expect(() => readLogCurves(log, ['loss'], (message) => warnings.push(message))).to.throw(SegkitError, `${log}:4: expected one JSON object per line, got ${JSON.stringify(lines[3])}`);
    await expectSegkitError(plotLogCurves(log, { keys: ['loss'], out: path.join(path.dirname(log), 'x.svg'), warn: (m) => warnings.push(m) }), `${log}:4: expected one JSON object per line`);
    expect(warnings).to.deep.equal([]);
  });
});

async function expectSegkitError(promise: Promise<unknown>, message: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(SegkitError);
    expect((error as Error).message).to.include(message);
    return;
  }
  expect.fail(`expected a SegkitError containing "${message}"`);
}
