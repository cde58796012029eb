import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import { loadConfigAndKernel, readSafetensors, train } from '@segkit/core';
import { repo, tinyConfig } from './tiny-config';

const quiet = { info: () => undefined, warn: () => undefined };

describe('training end to end (tiny UNet, all four tricks but OHEM/Dice, synthetic DRIVE)', function () {
  this.timeout(600000);
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-e2e-'));
    const { synthDrive } = require('@segkit/datasets') as { synthDrive: (o: object) => Promise<unknown> };
    await synthDrive({ out: path.join(dir, 'data'), count: 4, size: [64, 64], seed: 3 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function run(name: string, config: Record<string, unknown>, options: { resumeFrom?: string } = {}) {
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(config));
    const { config: loaded, kernel } = await loadConfigAndKernel(file, { logger: quiet });
    const tensorCounts: number[] = [];
    kernel.bus.on('iter:end').subscribe((event) => tensorCounts.push(event.memory.numTensors));
    const errors: string[] = [];
    kernel.bus.on('hook:error').subscribe((event) => errors.push(`${event.hook}: ${event.error.message}`));
    const result = await train({ kernel, config: loaded, workDir: path.join(dir, name), resumeFrom: options.resumeFrom });
    return { result, tensorCounts, errors };
  }

  it('trains, logs, evaluates and checkpoints; tensors stay flat; resume matches an uninterrupted run', async () => {
    const before = tf.memory().numTensors;
    const full = await run('full', tinyConfig(path.join(dir, 'data')));
    expect(full.errors).to.deep.equal([]);
    expect(full.result.iter).to.equal(4);
    // Every iteration ends with the same number of live tensors (no leak per step).
    expect(new Set(full.tensorCounts).size, `tensor counts ${full.tensorCounts}`).to.equal(1);
    expect(tf.memory().numTensors).to.equal(before);

    const workDir = path.join(dir, 'full');
    const files = fs.readdirSync(workDir);
    for (const name of ['iter_2.safetensors', 'iter_4.safetensors', 'latest.safetensors']) expect(files).to.include(name);
    const jsonLog = files.find((f) => f.endsWith('.log.json'))!;
    const records = fs.readFileSync(path.join(workDir, jsonLog), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const trainLines = records.filter((r) => r.mode === 'train');
    expect(trainLines.map((r) => r.iter)).to.deep.equal([2, 4]);
    for (const key of ['decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'loss', 'lr', 'lr.head']) expect(trainLines[0]).to.have.property(key);
    // Head lr ×10 at every iteration: poly from 0.1 vs from 0.01 to the same min_lr 1e-4.
    const lrAt = (base: number, iter: number) => (base - 1e-4) * (1 - iter / 4) ** 0.9 + 1e-4;
    expect(trainLines[0].lr).to.be.closeTo(lrAt(0.01, 1), 1e-9);
    expect(trainLines[0]['lr.head']).to.be.closeTo(lrAt(0.1, 1), 1e-9);
    const evalLine = records.find((r) => r.mode === 'val');
    expect(evalLine).to.include.keys('aAcc', 'mDice', 'Dice.vessel', 'Dice.background');
    const textLog = fs.readFileSync(path.join(workDir, files.find((f) => f.endsWith('.log') && !f.endsWith('.json'))!), 'utf8');
    expect(textLog).to.match(/^Iter \[2\/4\]\tlr: \d\.\d{3}e-\d\d \(head \d\.\d{3}e-\d\d\), eta: .*decode\.loss_ce: .*aux\.loss_ce: .*loss: /m);

    // Interrupted at 2 and resumed: the same weights as the uninterrupted run.
    const resumed = await run('resumed', tinyConfig(path.join(dir, 'data')), { resumeFrom: path.join(workDir, 'iter_2.safetensors') });
    expect(resumed.result.iter).to.equal(4);
    const a = readSafetensors(path.join(workDir, 'iter_4.safetensors')).tensors;
    const b = readSafetensors(path.join(dir, 'resumed', 'iter_4.safetensors')).tensors;
    expect([...b.keys()]).to.deep.equal([...a.keys()]);
    for (const [name, tensor] of a) {
      const other = b.get(name)!.data;
      let maxDiff = 0;
      for (let i = 0; i < tensor.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(tensor.data[i]! - other[i]!));
      expect(maxDiff, name).to.be.at.most(1e-6);
    }
  });

  /** The CLI as a user runs it, on the run above. */
  function segkit(args: string[]): { code: number; stdout: string; stderr: string } {
    const result = spawnSync(process.execPath, [path.join(repo, 'core', 'bin', 'segkit.js'), ...args], { cwd: dir, encoding: 'utf8' });
    return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  }

  it('segkit test, infer and plot work on the trained checkpoint', async () => {
    const config = path.join(dir, 'full.json');
    const checkpoint = path.join(dir, 'full', 'latest.safetensors');
    const tested = segkit(['test', config, checkpoint, '--eval', 'mIoU', 'mDice', '--show-dir', path.join(dir, 'show')]);
    expect(tested.code, tested.stderr).to.equal(0);
    expect(tested.stdout).to.match(/\|\s+Class\s+\|\s+IoU\s+\|\s+Acc\s+\|\s+Dice\s+\|/);
    expect(tested.stdout).to.match(/\|\s+aAcc\s+\|\s+mIoU\s+\|\s+mAcc\s+\|\s+mDice\s+\|/);
    // Two validation images: an overlay, a palette PNG and a raw label map each.
    expect(fs.readdirSync(path.join(dir, 'show')).sort()).to.have.length(6);

    const image = path.join(dir, 'data', 'images', 'validation', fs.readdirSync(path.join(dir, 'data', 'images', 'validation')).sort()[0]!);
    const inferred = segkit(['infer', config, checkpoint, image, '--out', path.join(dir, 'infer')]);
    expect(inferred.code, inferred.stderr).to.equal(0);
    const { decode } = require('fast-png') as { decode: (b: Uint8Array) => { width: number; height: number; channels: number; data: Uint8Array } };
    const stem = path.basename(image, '.png');
    const labels = decode(fs.readFileSync(path.join(dir, 'infer', `${stem}_pred.png`)));
    const overlay = decode(fs.readFileSync(path.join(dir, 'infer', `${stem}_overlay.png`)));
    expect([labels.width, labels.height, labels.channels]).to.deep.equal([64, 64, 1]);
    expect([overlay.width, overlay.height, overlay.channels]).to.deep.equal([64, 64, 3]);
    expect(new Set(labels.data).size).to.be.at.most(2);
    for (const value of labels.data) expect(value).to.be.oneOf([0, 1]);

    const missing = segkit(['infer', config, checkpoint, path.join(dir, 'nope.png'), '--out', path.join(dir, 'infer')]);
    expect(missing.code).to.equal(1);
    // Build-time warnings may come first; the error itself is one line, without a stack trace.
    expect(missing.stderr.trim().split('\n').pop()).to.equal(`segkit: infer: image not found: ${path.join(dir, 'nope.png')}`);
    expect(missing.stderr).to.not.match(/\n\s+at /);

    const log = path.join(dir, 'full', fs.readdirSync(path.join(dir, 'full')).find((f) => f.endsWith('.log.json'))!);
    const plotted = segkit(['plot', log, '--keys', 'decode.loss_ce', 'aux.loss_ce', '--out', path.join(dir, 'curves.svg')]);
    expect(plotted.code, plotted.stderr).to.equal(0);
    expect(fs.readFileSync(path.join(dir, 'curves.svg'), 'utf8')).to.contain('decode.loss_ce');
  });
});
