#!/usr/bin/env node
// Data-parallel training on MPI (@segkit/dist-mpi), three tables:
//  (a) the demo config's training throughput (samples/s, global batch 4): 1 process × 2 threads
//      (samples_per_gpu 4) vs `mpirun -np 2` × 1 thread each (samples_per_gpu 2), native backend;
//      median step time of iterations 3..N from the JSON log. The demo's norm layers are SyncBN
//      (3 small allreduces per layer and iteration); a second 2-rank run with BN shows their cost.
//      The 2-rank runs set Open MPI's mpi_yield_when_idle: on a machine shared with other jobs a rank
//      waiting in a collective should not spin on a core its peer needs;
//  (b) gradient synchronisation per iteration for UNet-S5-D16 base 64 and PSPNet R50-D8 between 2
//      ranks on this machine (shared memory): synthetic gradients of the models' real trainable
//      parameter shapes, in the training's 25 MB buckets (bench/dist-mpi-allreduce.js);
//  (c) on paper: bytes a ring allreduce moves per node and iteration for PSPNet R50-D8 on 8 nodes,
//      and the link bandwidth that keeps it under 10% of an iteration.
//   node bench/dist-mpi.js [--iters=12] [--skip-throughput]
// Needs Open MPI (mpirun) and the built binding; build first (npx tsc -b).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const repo = path.resolve(__dirname, '..');
const segkit = path.join(repo, 'core', 'bin', 'segkit.js');
const option = (name, fallback) => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? arg.slice(name.length + 3) : fallback;
};
const ITERS = Number(option('iters', '12'));
const MPI_ENV = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_mpi_yield_when_idle: '1' };

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padStart(widths[i])).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function check(result, what) {
  if (result.status !== 0) {
    console.error(`${what} failed (exit ${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`);
    process.exit(1);
  }
}

async function throughput() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-bench-mpi-'));
  try {
    const { synthDrive } = require('@segkit/datasets');
    const data = path.join(dir, 'data');
    await synthDrive({ out: data, count: 20, size: [128, 128], seed: 1 });
    const config = path.join(repo, 'configs/demo/unet-s5-d16_tricks_64x64_synthetic-drive.ts');
    const args = (workDir, samplesPerGpu) => [segkit, 'train', config, '--work-dir', path.join(dir, workDir), '--no-validate', '--cfg-options',
      `runner.max_iters=${ITERS}`, 'log_config.interval=1', 'checkpoint_config.interval=100000', `data.samples_per_gpu=${samplesPerGpu}`,
      `data.train.dataset.data_root=${data}`, `data.val.data_root=${data}`, `data.test.data_root=${data}`];
    const stepTimes = (workDir) => {
      const logs = fs.readdirSync(path.join(dir, workDir)).filter((f) => f.endsWith('.log.json'));
      const records = fs.readFileSync(path.join(dir, workDir, logs[0]), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      return records.filter((r) => r.mode === 'train' && r.iter > 2).map((r) => r.time);
    };
    const rows = [];
    const single = spawnSync(process.execPath, args('one', 4), { cwd: dir, encoding: 'utf8', env: { ...process.env, SEGKIT_NUM_THREADS: '2' } });
    check(single, '1 process');
    const bn = ['model.backbone.norm_cfg.type=BN', 'model.decode_head.norm_cfg.type=BN', 'model.auxiliary_head.norm_cfg.type=BN'];
    const twoRanks = (workDir, extra) => {
      const result = spawnSync('mpirun', ['-np', '2', '--oversubscribe', '-x', 'SEGKIT_NUM_THREADS=1', process.execPath, ...args(workDir, 2), ...extra, '--launcher', 'mpi'], { cwd: dir, encoding: 'utf8', env: MPI_ENV });
      check(result, `mpirun -np 2 (${workDir})`);
      const allreduceLine = /gradient allreduce over 2 processes: ([\d.]+) ms per iteration/.exec(result.stdout);
      return allreduceLine ? allreduceLine[1] : '?';
    };
    const runs = [
      ['1 process × 2 threads, samples_per_gpu 4 (SyncBN = BN)', 'one', '-'],
      ['mpirun -np 2 × 1 thread, samples_per_gpu 2, SyncBN', 'two', twoRanks('two', [])],
      ['mpirun -np 2 × 1 thread, samples_per_gpu 2, BN', 'two-bn', twoRanks('two-bn', bn)],
    ];
    const base = median(stepTimes('one'));
    for (const [label, workDir, allreduce] of runs) {
      const step = median(stepTimes(workDir));
      rows.push([label, step.toFixed(3), (4 / step).toFixed(2), (base / step).toFixed(2), allreduce]);
    }
    console.log(`(a) demo config (UNet-S5-D16 base 16, OHEM, CE + Dice, 64×64 crops), global batch 4, native backend, median of iterations 3..${ITERS}`);
    console.log(table(['run', 'step s', 'samples/s', 'vs 1 process', 'allreduce ms/iter'], rows));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function allreduceTimes() {
  const models = [
    ['UNet-S5-D16 base 64 (+ aux FCN)', path.join(repo, 'configs/unet/fcn_unet_s5-d16_64x64_40k_drive.ts')],
    ['PSPNet R50-D8 (+ aux FCN)', path.join(repo, 'configs/pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.ts')],
  ];
  const rows = [];
  let pspnet;
  for (const [name, config] of models) {
    const result = spawnSync('mpirun', ['-np', '2', '--oversubscribe', process.execPath, path.join(__dirname, 'dist-mpi-allreduce.js'), config], { cwd: repo, encoding: 'utf8', env: MPI_ENV });
    check(result, `allreduce of ${name}`);
    const report = JSON.parse(result.stdout.trim().split('\n').pop());
    if (name.startsWith('PSPNet')) pspnet = report;
    rows.push([name, report.parameters.toLocaleString('en-US'), (report.bytes / 1e6).toFixed(1), report.buckets, report.mpiMs.toFixed(1), (report.bytes / 1e6 / (report.mpiMs / 1000) / 1000).toFixed(2), report.runnerMs.toFixed(1), report.runnerCollectiveMs.toFixed(1)]);
  }
  console.log('\n(b) gradient allreduce (mean) per iteration, 2 ranks on this machine (shared memory), synthetic gradients of the models\' trainable parameter shapes, 25 MB buckets; median of 5');
  console.log(table(['model', 'parameters', 'MB', 'buckets', 'MPI ms', 'GB/s (size/time)', 'runner path ms', 'of which MPI ms'], rows));
  console.log('    runner path = core allreduceGradients: read the gradient tensors, pack the buckets, allreduce, new tensors');
  return pspnet;
}

function onPaper(parameters) {
  const nodes = 8;
  const bytes = parameters * 4;
  // Ring allreduce (Open MPI's and NCCL's large-message algorithm): reduce-scatter then allgather, each
  // node sends (and receives) 2 (N − 1) / N of the buffer.
  const perNode = (2 * (nodes - 1) / nodes) * bytes;
  console.log(`\n(c) on paper: PSPNet R50-D8, ${parameters.toLocaleString('en-US')} parameters = ${(bytes / 1e6).toFixed(1)} MB of float32 gradients per iteration`);
  console.log(`    ring allreduce over ${nodes} nodes: each node sends and receives 2·(${nodes}−1)/${nodes} × ${(bytes / 1e6).toFixed(1)} MB = ${(perNode / 1e6).toFixed(1)} MB per iteration`);
  console.log('    link bandwidth (each direction) for the allreduce to take at most 10% of the iteration time T:');
  const rows = [0.5, 1, 6, 50].map((t) => {
    const gbit = (perNode * 8) / (0.1 * t) / 1e9;
    const link = gbit <= 10 ? '10 GbE' : gbit <= 25 ? '25 GbE' : gbit <= 100 ? '100 Gb/s (EDR InfiniBand / 100 GbE)' : gbit <= 200 ? '200 Gb/s (HDR InfiniBand)' : '> 200 Gb/s';
    return [`${t} s`, gbit.toFixed(1), link];
  });
  console.log(table(['iteration T', 'Gbit/s needed', 'smallest common link'], rows));
}

async function main() {
  if (spawnSync('mpirun', ['--version']).status !== 0) {
    console.error('bench/dist-mpi.js: needs mpirun (Debian: apt-get install openmpi-bin libopenmpi-dev)');
    process.exit(1);
  }
  console.log(`machine: ${os.cpus()[0].model}, ${os.availableParallelism()} hardware threads (shared with other jobs: timings are under load)`);
  if (!process.argv.includes('--skip-throughput')) await throughput();
  const pspnet = allreduceTimes();
  onPaper(pspnet ? pspnet.parameters : 48975494);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
