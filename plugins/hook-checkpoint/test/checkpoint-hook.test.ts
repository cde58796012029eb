import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { EventBus, SegkitError, type CheckpointMeta, type EvaluationResult, type RunnerView } from '@segkit/core';
import { CheckpointHook, checkpointSchema } from '../src';

/** A runner stand-in whose checkpoints are small JSON files recording the iteration and the best score. */
function fakeRunner(workDir: string, maxIters = 10): RunnerView & { iter: number; logs: string[] } {
  const bus = new EventBus();
  const logs: string[] = [];
  bus.on('log').subscribe((event) => logs.push(event.message));
  const runner = {
    workDir,
    maxIters,
    iter: 0,
    bus,
    logs,
    timestamp: '20261202_080000',
    config: {},
    async saveCheckpoint(file: string, extra: { best?: CheckpointMeta['best'] } = {}) {
      fs.writeFileSync(file, JSON.stringify({ iter: runner.iter, best: extra.best ?? null }));
    },
  };
  return runner as unknown as RunnerView & { iter: number; logs: string[] };
}

const options = (cfg: Record<string, unknown>) => checkpointSchema.parse(cfg);
const result = (metrics: Record<string, number>): EvaluationResult => ({ metrics, classTable: [], text: '' });
const files = (dir: string) => fs.readdirSync(dir).sort();

describe('CheckpointHook', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-ckpt-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('saves every interval and at the end, keeps max_keep_ckpts periodic files and a copy as latest', async () => {
    const hook = new CheckpointHook(options({ interval: 2, max_keep_ckpts: 2 }));
    const runner = fakeRunner(dir, 5);
    for (runner.iter = 1; runner.iter <= 5; runner.iter++) await hook.afterTrainIter(runner);
    expect(files(dir)).to.deep.equal(['iter_4.safetensors', 'iter_5.safetensors', 'latest.safetensors']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'latest.safetensors'), 'utf8')).iter).to.equal(5);
  });

  it('save_best keeps only the best checkpoint by the rule; a metric that is never computed stops the run', async () => {
    const greater = new CheckpointHook(options({ interval: 100, save_best: 'mDice' }));
    const runner = fakeRunner(dir);
    for (const [iter, value] of [[2, 0.5], [4, 0.4], [6, 0.6], [8, 0.6]] as const) {
      runner.iter = iter;
      await greater.afterVal(runner, result({ aAcc: 0.9, mDice: value }));
    }
    // 0.6 at 8 is not better than 0.6 at 6 (strictly greater, as MMCV).
    expect(files(dir)).to.deep.equal(['best_mDice_iter_6.safetensors']);
    const less = new CheckpointHook(options({ interval: 100, save_best: 'loss', rule: 'less' }));
    fs.rmSync(path.join(dir, 'best_mDice_iter_6.safetensors'));
    for (const [iter, value] of [[2, 0.5], [4, 0.4], [6, 0.6]] as const) {
      runner.iter = iter;
      await less.afterVal(runner, result({ loss: value }));
    }
    expect(files(dir)).to.deep.equal(['best_loss_iter_4.safetensors']);
    let error: unknown;
    try {
      await new CheckpointHook(options({ save_best: 'mIoU' })).afterVal(runner, result({ aAcc: 0.9, mDice: 0.5, 'Dice.road': 0.5 }));
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(SegkitError);
    expect((error as Error).message).to.equal("checkpoint_config.save_best: metric 'mIoU' is not in the evaluation results (aAcc, mDice)");
  });

  it('on resume, rebuilds the rotation from the files on disk and the best score from the metadata', async () => {
    const first = new CheckpointHook(options({ interval: 2, max_keep_ckpts: 2, save_best: 'mDice' }));
    const runner = fakeRunner(dir);
    runner.iter = 2;
    await first.afterVal(runner, result({ mDice: 0.7 }));
    const meta: CheckpointMeta = { iter: 4 };
    first.beforeSaveCheckpoint(runner, meta);
    expect(meta.hooks).to.deep.equal({ CheckpointHook: { best: { metric: 'mDice', value: 0.7, iter: 2, file: 'best_mDice_iter_2.safetensors' } } });
    // The interrupted run had gone on to iteration 6 (with a better score there) before it was resumed from 4.
    for (const iter of [2, 4, 6]) fs.writeFileSync(path.join(dir, `iter_${iter}.safetensors`), '{}');
    fs.writeFileSync(path.join(dir, 'best_mDice_iter_6.safetensors'), '{}');

    const resumed = new CheckpointHook(options({ interval: 2, max_keep_ckpts: 2, save_best: 'mDice' }));
    runner.iter = 4;
    resumed.afterLoadCheckpoint(runner, meta);
    expect(files(dir)).to.not.include('best_mDice_iter_6.safetensors');
    runner.iter = 6;
    await resumed.afterTrainIter(runner);
    // [iter_2, iter_4] came from disk, iter_6 was written: the oldest goes (4 files would stay without the rebuild).
    expect(files(dir)).to.deep.equal(['best_mDice_iter_2.safetensors', 'iter_4.safetensors', 'iter_6.safetensors', 'latest.safetensors']);
    // 0.65 is not better than the restored 0.7: no new best (every first evaluation after a resume counted before).
    await resumed.afterVal(runner, result({ mDice: 0.65 }));
    expect(files(dir)).to.include('best_mDice_iter_2.safetensors');
  });

  it('removes temporary files an interrupted save left behind, with a notice', () => {
    fs.writeFileSync(path.join(dir, `iter_2.safetensors.tmp-${2 ** 22 + 17}`), 'partial');
    const runner = fakeRunner(dir);
    new CheckpointHook(options({})).beforeRun(runner);
    expect(files(dir)).to.deep.equal([]);
    expect(runner.logs).to.deep.equal([`removed 1 temporary file(s) left by an interrupted save: iter_2.safetensors.tmp-${2 ** 22 + 17}`]);
  });
});
