#!/usr/bin/env node
// Memory beside PyTorch (issue #17), each measurement in its own process:
//   peak RSS of a PSPNet R50-D8 (+ aux) training iteration, batch 2 at 256² and 512² (after a warm-up
//   iteration, i.e. with the optimizer state allocated), on `native` and in PyTorch (torch_models.py);
//   a growth check: RSS and tfjs's tensor count over --iterations (default 200) UNet base-16 training
//   iterations on `native` must not grow after the first 20 (a bench check: prints ok or GROWS).
//   With --compare-grads, also the same iteration with tf.variableGrads (tfjs's backward pass, which keeps
//   every saved tensor and intermediate gradient to the end) beside the runner's leanVariableGrads.
//   node bench/memory.js [--only=pspnet256,pspnet512,growth] [--iterations=200] [--compare-grads] [--no-torch]
'use strict';
const path = require('path');
const os = require('os');
const { spawnSync } = require('child_process');
const { recordResult } = require('./summary');

const PYTHON = '/usr/bin/python3';
const option = (name, fallback) => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? arg.slice(name.length + 3) : fallback;
};
const flag = (name) => process.argv.includes(`--${name}`);
const PEAKS = { pspnet256: 256, pspnet512: 512 };
// RSS may rise by this much between iteration 20 and the last before the check calls it growth
// (allocator and V8 heap settle; a leak of one activation map per iteration exceeds it quickly).
const GROWTH_TOLERANCE_MB = 64;

async function worker(task) {
  const { SETTINGS, buildStep } = require('./train-step');
  const rssMb = () => process.memoryUsage().rss / 2 ** 20;
  if (task === 'growth') {
    const { tf, step, dispose } = await buildStep(SETTINGS.unet16, 'native');
    const iterations = Number(option('iterations', 200));
    const samples = [];
    let tensorsAt20 = 0;
    for (let i = 1; i <= iterations; i++) {
      tf.tidy(() => step()).dispose();
      if (i === 20) tensorsAt20 = tf.memory().numTensors;
      if (i >= 20 && (i % 20 === 0 || i === iterations)) samples.push({ iteration: i, rssMb: rssMb() });
    }
    const result = { samples, tensorsAt20, tensorsAtEnd: tf.memory().numTensors };
    dispose();
    process.stdout.write(`\n@@RESULT ${JSON.stringify(result)}\n`);
    return;
  }
  const setting = { ...SETTINGS.pspnet, size: PEAKS[task] };
  const { tf, step, dispose } = await buildStep(setting, 'native');
  for (let i = 0; i < 2; i++) tf.tidy(() => step()).dataSync();
  const result = { peakRssMb: process.resourceUsage().maxRSS / 1024 };
  dispose();
  process.stdout.write(`\n@@RESULT ${JSON.stringify(result)}\n`);
}

function runChild(command, args, env = {}) {
  const child = spawnSync(command, args, { encoding: 'utf8', timeout: 2 * 60 * 60 * 1000, maxBuffer: 1 << 26, env: { ...process.env, ...env } });
  const line = (child.stdout || '').split('\n').find((l) => l.startsWith('@@RESULT '));
  if (!line) return { error: `failed: ${((child.stderr || '').trim().split('\n').slice(-3).join(' | ') || `exit ${child.status ?? child.signal}`).slice(0, 300)}` };
  return JSON.parse(line.slice('@@RESULT '.length));
}

function main() {
  const { printTable } = require('./backend-timing');
  const tasks = option('only', 'pspnet256,pspnet512,growth').split(',');
  const withTorch = !flag('no-torch') && spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  console.log(`memory: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; PyTorch ${withTorch ? 'yes' : 'not available'}`);
  const rows = [];
  for (const task of tasks.filter((t) => PEAKS[t])) {
    const native = runChild(process.execPath, [__filename, `--worker=${task}`]);
    const tfjsGrads = flag('compare-grads') ? runChild(process.execPath, [__filename, `--worker=${task}`], { SEGKIT_BENCH_GRADS: 'tfjs' }) : null;
    const torch = withTorch
      ? runChild(PYTHON, [path.join(__dirname, 'torch_models.py'), '--model', 'pspnet', '--batch', '2', '--size', String(PEAKS[task]), '--classes', '19', '--runs', '1', '--warmup', '1', '--threads', '2'])
      : { error: 'not run' };
    // The summary's PSPNet memory ratio is the 256² one (the size train-step.js trains at).
    if (task === 'pspnet256') for (const [side, r] of [['native', native], ['torch', torch]]) if (!r.error) recordResult('pspnet', 'memory', side, r.peakRssMb, 'MB');
    const cell = (r) => (r.error ? r.error : r.peakRssMb);
    const ratio = (r) => (r.error || torch.error ? '-' : `${(r.peakRssMb / torch.peakRssMb).toFixed(2)}x`);
    rows.push([`PSPNet R50-D8 + aux, b2 ${PEAKS[task]}²`, cell(native), cell(torch), ratio(native)]);
    if (tfjsGrads) rows.push([`  same, tf.variableGrads (before leanVariableGrads)`, cell(tfjsGrads), cell(torch), ratio(tfjsGrads)]);
  }
  if (rows.length) printTable('Peak RSS of a training iteration (MB, after a warm-up iteration)', ['model', 'native MB', 'torch MB', 'native/torch'], rows);
  if (tasks.includes('growth')) {
    const growth = runChild(process.execPath, [__filename, '--worker=growth', `--iterations=${option('iterations', 200)}`]);
    if (growth.error) {
      console.log(`\ngrowth check: ${growth.error}`);
    } else {
      const first = growth.samples[0], last = growth.samples[growth.samples.length - 1];
      const grewMb = last.rssMb - first.rssMb;
      const ok = grewMb <= GROWTH_TOLERANCE_MB && growth.tensorsAtEnd === growth.tensorsAt20;
      printTable(`RSS over ${last.iteration} UNet base-16 training iterations on native (MB)`, ['iteration', 'RSS MB'], growth.samples.map((s) => [String(s.iteration), s.rssMb]));
      console.log(`growth check: ${ok ? 'ok' : 'GROWS'} (RSS ${grewMb >= 0 ? '+' : ''}${grewMb.toFixed(0)} MB from iteration ${first.iteration} to ${last.iteration}, tolerance ${GROWTH_TOLERANCE_MB} MB; tensors ${growth.tensorsAt20} -> ${growth.tensorsAtEnd})`);
    }
  }
}

const workerTask = option('worker', null);
if (workerTask) worker(workerTask).catch((error) => { console.error(error); process.exit(1); });
else main();
