import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { SegkitError, checkLabelRange, definePlugin, loadConfigAndKernel, train, z, type Loss } from '@segkit/core';
import { tinyConfig } from './tiny-config';

let forwardCalls = 0;
/** A loss that is NaN on every `badEvery`-th call (0 at others, so it changes nothing when finite). */
const flakyLossPlugin = definePlugin({
  name: 'flaky-nan-loss',
  version: '0.0.0',
  components: {
    losses: [
      {
        type: 'FlakyNaNLoss',
        schema: z.object({ bad_every: z.number().int().positive().default(1), loss_name: z.string().default('loss_flaky') }),
        create: (options: { bad_every: number; loss_name: string }): Loss => ({
          lossName: options.loss_name,
          usesPixelWeight: false,
          forward: (logits) => {
            forwardCalls += 1;
            return tf.mul(tf.mean(logits), forwardCalls % options.bad_every === 0 ? NaN : 0);
          },
        }),
      },
      {
        // Takes class 0 only, so the generated vessel labels (1) are out of its range.
        type: 'OneClassLoss',
        schema: z.object({}),
        create: (): Loss => ({
          lossName: 'loss_one_class',
          usesPixelWeight: false,
          forward: (logits) => {
            forwardCalls += 1;
            return tf.mul(tf.mean(logits), 0);
          },
          checkLabels: (labels, _numChannels, ignoreIndex) => checkLabelRange(labels, 1, ignoreIndex, 'OneClassLoss'),
        }),
      },
    ],
  },
});

describe('run guards: non-finite losses, one writer per work dir', function () {
  this.timeout(600000);
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-guards-'));
    const { synthDrive } = require('@segkit/datasets') as { synthDrive: (o: object) => Promise<unknown> };
    await synthDrive({ out: path.join(dir, 'data'), count: 4, size: [64, 64], seed: 3 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function runTiny(name: string, overrides: Record<string, unknown>, badEvery?: number, extraLoss?: Record<string, unknown>) {
    const config = tinyConfig(path.join(dir, 'data'), overrides) as Record<string, any>;
    if (badEvery) config.model.decode_head.loss_decode = [config.model.decode_head.loss_decode, { type: 'FlakyNaNLoss', bad_every: badEvery }];
    if (extraLoss) config.model.decode_head.loss_decode = [config.model.decode_head.loss_decode, extraLoss];
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(config));
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`warning: ${m}`) };
    const { config: loaded, kernel } = await loadConfigAndKernel(file, { logger });
    await kernel.loadPlugin(flakyLossPlugin);
    const workDir = path.join(dir, name);
    forwardCalls = 0;
    try {
      return { result: await train({ kernel, config: loaded, workDir }), lines, workDir, error: undefined };
    } catch (error) {
      return { result: undefined, lines, workDir, error: error as Error };
    }
  }

  it('a NaN loss stops the run before the optimizer step, naming the iteration and the terms; no checkpoint is written', async () => {
    const before = tf.memory().numTensors;
    const { error, workDir } = await runTiny('nan-stop', { checkpoint_config: { interval: 1 } }, 1);
    expect(error).to.be.instanceOf(SegkitError);
    expect(error!.message).to.equal(
      "iteration 1: the loss is not finite (decode.loss_flaky: NaN, loss: NaN); training stopped before the optimizer step, so no checkpoint holds these values (lower the lr, check the data, or set nan_policy: 'skip')",
    );
    expect(fs.readdirSync(workDir).filter((f) => f.endsWith('.safetensors'))).to.deep.equal([]);
    expect(fs.existsSync(path.join(workDir, '.segkit.lock'))).to.equal(false);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('labels out of a loss\'s range stop the run before the first forward pass (checkLabels, asynchronous readback), with the loss\'s message', async () => {
    const before = tf.memory().numTensors;
    const { error, workDir } = await runTiny('label-range', { checkpoint_config: { interval: 1 } }, undefined, { type: 'OneClassLoss' });
    expect(error).to.be.instanceOf(SegkitError);
    expect(error!.message).to.equal(
      "OneClassLoss: label 1 is outside [0, 1) and is not the ignore index 255; check the dataset's label values (reduce_zero_label, classes) or the head's num_classes/ignore_index",
    );
    expect(forwardCalls).to.equal(0);
    expect(fs.readdirSync(workDir).filter((f) => f.endsWith('.safetensors'))).to.deep.equal([]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it("nan_policy: 'skip' skips each bad batch with a counted warning and finishes", async () => {
    const { result, lines, error } = await runTiny('nan-skip', { nan_policy: 'skip' }, 2);
    expect(error).to.equal(undefined);
    expect(result!.iter).to.equal(4);
    // Calls 2, 4 and 6 are NaN: 7 forward passes give 4 iterations.
    expect(forwardCalls).to.equal(7);
    const skips = lines.filter((l) => l.includes('batch skipped'));
    expect(skips).to.deep.equal([
      "warning: iteration 2: the loss is not finite (decode.loss_flaky: NaN, loss: NaN); batch skipped (nan_policy: 'skip', 1 in a row)",
      "warning: iteration 3: the loss is not finite (decode.loss_flaky: NaN, loss: NaN); batch skipped (nan_policy: 'skip', 1 in a row)",
      "warning: iteration 4: the loss is not finite (decode.loss_flaky: NaN, loss: NaN); batch skipped (nan_policy: 'skip', 1 in a row)",
    ]);
  });

  it('a second run in a work dir that a live run holds refuses; a stale lock is taken over with a notice', async () => {
    const workDir = path.join(dir, 'locked');
    fs.mkdirSync(workDir, { recursive: true });
    // This process is alive: its lock means a run is going on.
    fs.writeFileSync(path.join(workDir, '.segkit.lock'), JSON.stringify({ pid: process.pid, host: os.hostname(), started: '2026-12-02T07:00:00.000Z' }));
    const refused = await runTiny('locked', {});
    expect(refused.error!.message).to.equal(
      `work_dir: ${workDir} is in use by another segkit run (pid ${process.pid}, started 2026-12-02T07:00:00.000Z); use another --work-dir, or wait for that run to end`,
    );
    // A PID that no process has: the run that held it died.
    const dead = 2 ** 22 + 17;
    fs.writeFileSync(path.join(workDir, '.segkit.lock'), JSON.stringify({ pid: dead, host: os.hostname(), started: '2026-12-02T06:00:00.000Z' }));
    const takenOver = await runTiny('locked', {});
    expect(takenOver.error).to.equal(undefined);
    expect(takenOver.lines).to.include(`warning: work_dir: taking over a stale lock of pid ${dead} (started 2026-12-02T06:00:00.000Z, no longer running)`);
    expect(fs.existsSync(path.join(workDir, '.segkit.lock'))).to.equal(false);
  });
});
