import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { readSafetensors } from '@segkit/core';
import { jsonLog, mpiUnavailable, repo, run, segkitBin } from './mpi-harness';

/**
 * A tiny UNet (SyncBN everywhere, as in MMSegmentation's UNet configs; dropout off, plain cross-entropy)
 * on generated DRIVE-like data. How the comparison is made exact: the DistributedSampler deals the
 * epoch's order out round-robin (rank r takes positions r, r + N, ...), so at every iteration the union
 * of the 2 ranks' batches of 2 is the 1-process batch of 4 (positions 4k..4k+3 of the same seeded order),
 * and each sample's augmentation stream is that of its position in the epoch, whatever the rank. SyncBN
 * normalises over that union; the cross-entropy is a mean over equally many pixels per rank, so the mean
 * of the ranks' gradients is the gradient of the 4-sample loss. Dropout is off because its masks are
 * drawn per process (as in MMSegmentation). What remains is the order of float32 sums.
 */
function config(dataRoot: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base = (file: string) => path.join(repo, 'configs/_base_', file);
  return {
    _base_: [base('models/fcn_unet_s5-d16.ts'), base('datasets/synthetic_drive.ts'), base('default_runtime.ts'), base('schedules/schedule_40k.ts')],
    model: {
      backbone: { base_channels: 4, num_stages: 3, strides: [1, 1, 1], enc_num_convs: [1, 1, 1], dec_num_convs: [1, 1], downsamples: [true, true], enc_dilations: [1, 1, 1], dec_dilations: [1, 1] },
      decode_head: { in_channels: 4, in_index: 2, channels: 4, dropout_ratio: 0 },
      auxiliary_head: { in_channels: 8, in_index: 1, channels: 4, dropout_ratio: 0 },
      test_cfg: { mode: 'whole' },
    },
    runner: { type: 'IterBasedRunner', max_iters: 5 },
    checkpoint_config: { by_epoch: false, interval: 3 },
    evaluation: { interval: 5, metric: 'mIoU' },
    log_config: { interval: 1, hooks: [{ type: 'TextLoggerHook', by_epoch: false }, { type: 'JsonLoggerHook' }] },
    data: {
      samples_per_gpu: 4,
      workers_per_gpu: 0,
      train: {
        dataset: {
          data_root: dataRoot,
          pipeline: [
            { type: 'LoadImageFromFile' },
            { type: 'LoadAnnotations' },
            { type: 'RandomCrop', crop_size: [32, 32], cat_max_ratio: 0.75 },
            { type: 'RandomFlip', prob: 0.5 },
            { type: 'Normalize', mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true },
            { type: 'DefaultFormatBundle' },
            { type: 'Collect', keys: ['img', 'gt_semantic_seg'] },
          ],
        },
      },
      val: { data_root: dataRoot },
      test: { data_root: dataRoot },
    },
    backend: 'cpu',
    seed: 7,
    ...extra,
  };
}

type LogRecord = Record<string, unknown>;

function trainRecords(workDir: string): LogRecord[] {
  return jsonLog(workDir).filter((r) => r.mode === 'train');
}

function expectClose(actual: number, expected: number, tolerance: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).to.be.at.most(tolerance);
}

/** Every tensor of two checkpoints agrees to `tolerance` (absolute, on values of order 1). */
function expectSameWeights(fileA: string, fileB: string, tolerance: number): number {
  const a = readSafetensors(fileA).tensors;
  const b = readSafetensors(fileB).tensors;
  expect([...b.keys()]).to.deep.equal([...a.keys()]);
  let worst = 0;
  for (const [name, tensor] of a) {
    const other = b.get(name)!.data;
    for (let i = 0; i < tensor.data.length; i++) worst = Math.max(worst, Math.abs(Number(other[i]) - Number(tensor.data[i])));
    expect(worst, name).to.be.at.most(tolerance);
  }
  return worst;
}

describe('@segkit/dist-mpi: data-parallel training under mpirun', function () {
  this.timeout(900000);
  let dir: string;
  let configFile: string;
  const unavailable = mpiUnavailable();

  before(async function () {
    if (unavailable) {
      console.warn(`    skipped: ${unavailable}`);
      this.skip();
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-dist-mpi-'));
    const { synthDrive } = require('@segkit/datasets') as { synthDrive: (o: object) => Promise<unknown> };
    await synthDrive({ out: path.join(dir, 'data'), count: 4, size: [64, 64], seed: 3 });
    configFile = path.join(dir, 'tiny_unet_syncbn.json');
    fs.writeFileSync(configFile, JSON.stringify(config(path.join(dir, 'data'))));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function train(ranks: number, workDir: string, samplesPerGpu: number, extraArgs: string[] = []) {
    const launcher = ranks > 0 ? ['--launcher', 'mpi'] : [];
    const result = run(ranks, [segkitBin, 'train', configFile, '--work-dir', path.join(dir, workDir), ...launcher, '--cfg-options', `data.samples_per_gpu=${samplesPerGpu}`, ...extraArgs], { cwd: dir });
    expect(result.code, `${result.stdout}\n${result.stderr}`).to.equal(0);
    return result;
  }

  it('2 ranks × samples_per_gpu 2 equal 1 process × samples_per_gpu 4: the 5 logged losses, the weights, the validation mIoU; a 2-rank checkpoint resumes on 1 and on 2 ranks', () => {
    train(0, 'single', 4);
    const parallel = train(2, 'parallel', 2);
    // Rank 0 alone writes: one log of each kind, checkpoints at 3 and 5, and nothing from rank 1 on the terminal.
    expect(fs.readdirSync(path.join(dir, 'parallel')).filter((f) => f.endsWith('.log.json'))).to.have.length(1);
    expect(parallel.stdout.match(/finished 5 iterations/g)).to.have.length(1);
    expect(parallel.stdout).to.contain('data-parallel over 2 processes');

    const one = trainRecords(path.join(dir, 'single'));
    const two = trainRecords(path.join(dir, 'parallel'));
    expect(one.map((r) => r.iter)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(two.map((r) => r.iter)).to.deep.equal([1, 2, 3, 4, 5]);
    const lossKeys = Object.keys(one[0]!).filter((key) => /(^|\.)loss/.test(key));
    expect(lossKeys).to.include.members(['decode.loss_ce', 'aux.loss_ce', 'loss']);
    one.forEach((record, i) => {
      for (const key of lossKeys) expectClose(Number(two[i]![key]), Number(record[key]), 1e-5, `iter ${i + 1} ${key}`);
    });
    // The losses move: 5 SGD steps changed the model (a comparison of untrained models would prove little).
    expect(Number(one[4]!.loss)).to.not.equal(Number(one[0]!.loss));
    expectSameWeights(path.join(dir, 'single', 'iter_5.safetensors'), path.join(dir, 'parallel', 'iter_5.safetensors'), 1e-5);

    // Sharded evaluation gathered on rank 0: the same mIoU as one process over the whole validation set.
    const evalOf = (workDir: string) => jsonLog(path.join(dir, workDir)).find((r) => r.mode === 'val')!;
    expectClose(Number(evalOf('parallel').mIoU), Number(evalOf('single').mIoU), 1e-4, 'mIoU');

    // The 2-rank iteration-3 checkpoint resumed with 1 process × 4 and with 2 ranks × 2 reaches the same iteration-5 weights.
    const checkpoint = path.join(dir, 'parallel', 'iter_3.safetensors');
    train(0, 'resumed-on-1', 4, ['--resume-from', checkpoint]);
    train(2, 'resumed-on-2', 2, ['--resume-from', checkpoint]);
    for (const resumed of ['resumed-on-1', 'resumed-on-2']) {
      const records = trainRecords(path.join(dir, resumed));
      expect(records.map((r) => r.iter)).to.deep.equal([4, 5]);
      for (const key of lossKeys) expectClose(Number(records[1]![key]), Number(one[4]![key]), 1e-5, `${resumed} iter 5 ${key}`);
      expectSameWeights(path.join(dir, 'single', 'iter_5.safetensors'), path.join(dir, resumed, 'iter_5.safetensors'), 1e-5);
    }
  });

  it('an error on rank 1 ends both ranks (MPI_Abort) with a message naming the rank (launched as srun tasks: --launcher slurm)', () => {
    const failing = path.join(dir, 'failing.json');
    const hook = path.join(__dirname, '..', '..', 'test', 'fixtures', 'fail-on-rank.js');
    fs.writeFileSync(failing, JSON.stringify({ _base_: configFile, plugins: [hook], custom_hooks: [{ type: 'FailOnRank', rank: 1, iter: 2 }], evaluation: { interval: 1000 } }));
    const result = run(2, [segkitBin, 'train', failing, '--work-dir', path.join(dir, 'failing'), '--launcher', 'slurm', '--cfg-options', 'data.samples_per_gpu=2'], { cwd: dir, timeoutSeconds: 240, asSrunTasks: true });
    // The slurm launcher joined the tasks into one MPI job (SLURM_PROCID/NTASKS agreed with MPI's rank and size).
    expect(result.stdout).to.contain('data-parallel over 2 processes (MPI under Slurm, 2 tasks on localhost');
    // Rank 0 was waiting in the next gradient allreduce: only the abort can end it, so a hang would hit the timeout (code -1).
    expect(result.code, result.stderr).to.not.equal(0);
    expect(result.code).to.not.equal(-1);
    expect(result.stderr).to.contain('segkit: rank 1 of 2: FailOnRank: injected failure after iteration 2');
    expect(result.stderr).to.contain('segkit: rank 1 of 2: ending every rank of the run');
    // Rank 0 never reached the end of the run.
    expect(result.stdout).to.not.contain('finished 5 iterations');
  });
});
