#!/usr/bin/env node
// One full training iteration (issue #8, table (c)): forward, the heads' losses, backward through
// tf.variableGrads and an SGD step through the optimizer plugins, exactly as the runner does it, for
// models built from the repo's configs:
//   UNet-S5-D16 + FCN heads (CE ×1 + Dice ×3 on decode and aux), base 16 and base 64, batch 4, 64×64;
//   PSPNet R50-D8 (+ aux FCN, CE), batch 2, 256×256;
// on `native` and `cpu` (cpu is skipped past a time budget), and in PyTorch (bench/torch_models.py, 2 threads)
// when /usr/bin/python3 has torch. Every measurement runs in its own child process (a clean heap and
// backend; a timeout is the cpu budget). Median of several runs after warm-up.
//   node bench/train-step.js [--only=unet16,unet64,pspnet] [--backends=native,cpu,webgpu] [--no-torch]
// webgpu (like cpu) gets --cpu-budget seconds of timed runs; its adapter is printed under the table.
//                            [--cpu-budget=60] [--profile [--by-shape]] [--top=25]
// --profile prints the top kernels by time (tf.profile) of one iteration on `native`, and V8's garbage-collection time in it;
// with --by-shape, one row per kernel and input shapes.
// Build first (npx tsc -b).
'use strict';
const path = require('path');
const { spawnSync } = require('child_process');
const os = require('os');
const { recordResult } = require('./summary');

const CONFIGS = path.resolve(__dirname, '../configs');
const PYTHON = '/usr/bin/python3';

const option = (name, fallback) => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? arg.slice(name.length + 3) : fallback;
};
const flag = (name) => process.argv.includes(`--${name}`);

/** UNet cfg-options for a base width: the heads read the last two decoder levels (base and 2·base channels). */
const unetOptions = (base) => [
  `model.backbone.base_channels=${base}`,
  `model.decode_head.in_channels=${base}`,
  `model.decode_head.channels=${base}`,
  `model.auxiliary_head.in_channels=${2 * base}`,
  `model.auxiliary_head.channels=${base}`,
];

const SETTINGS = {
  unet16: {
    name: 'UNet-S5-D16 base 16, b4 64²',
    config: 'unet/fcn_unet_s5-d16_ce-1.0-dice-3.0_64x64_40k_drive.ts',
    options: unetOptions(16),
    batch: 4, size: 64, classes: 2, runs: 7, warmup: 2,
    torch: ['--model', 'unet', '--base', '16'],
  },
  unet64: {
    name: 'UNet-S5-D16 base 64, b4 64²',
    config: 'unet/fcn_unet_s5-d16_ce-1.0-dice-3.0_64x64_40k_drive.ts',
    options: unetOptions(64),
    batch: 4, size: 64, classes: 2, runs: 5, warmup: 1,
    torch: ['--model', 'unet', '--base', '64'],
  },
  pspnet: {
    name: 'PSPNet R50-D8, b2 256²',
    config: 'pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.ts',
    options: ['model.pretrained=null'],
    batch: 2, size: 256, classes: 19, runs: 3, warmup: 1,
    torch: ['--model', 'pspnet'],
  },
};

// ---------------------------------------------------------------------------------------------
// Worker: measures one (setting, backend) in this process and prints one JSON line.

async function buildStep(setting, backend) {
  const tf = require('@tensorflow/tfjs-core');
  const { loadConfigAndKernel, buildOptimizer, parseLossTensors, leanVariableGrads } = require('@segkit/core');
  const quiet = { info() {}, warn() {} };
  const { config, kernel } = await loadConfigAndKernel(path.join(CONFIGS, setting.config), { cfgOptions: setting.options, backend, logger: quiet });
  const model = kernel.build('segmentors', config.model, { path: 'model' });
  model.train();
  const optimizer = buildOptimizer(kernel, model, config.optimizer);
  const trainable = model.parameters().filter((variable) => variable.trainable);
  const images = tf.randomUniform([setting.batch, setting.size, setting.size, 3], -1, 1, 'float32', 1);
  const labels = tf.randomUniform([setting.batch, setting.size, setting.size], 0, setting.classes, 'int32', 2);
  // The runner's step (core/src/engine/runner.ts): the loss value is returned so the timing reads it back.
  // The runner's gradient pass (leanVariableGrads) unless SEGKIT_BENCH_GRADS=tfjs asks for tf.variableGrads (memory.js compares them).
  const variableGrads = process.env.SEGKIT_BENCH_GRADS === 'tfjs' ? tf.variableGrads : leanVariableGrads;
  const step = () => {
    const { value, grads } = variableGrads(() => parseLossTensors(model.forwardTrain(images, labels)).loss, trainable);
    optimizer.step(grads);
    tf.dispose(Object.values(grads));
    return value;
  };
  const dispose = () => {
    tf.dispose([images, labels]);
    optimizer.dispose();
    model.dispose();
  };
  return { tf, step, dispose, backend: kernel.backend };
}

async function worker(key, backend) {
  const { timeOnBackend, profileKernels } = require('./backend-timing');
  const setting = SETTINGS[key];
  const { tf, step, dispose } = await buildStep(setting, backend);
  const result = { medianMs: null, samples: [], profile: null };
  if (backend === 'webgpu') {
    // GPU tensors read back only asynchronously; the adapter makes the figure self-describing.
    result.adapter = require('@segkit/backend-webgpu').webGpuBackendProvider.describe();
    Object.assign(result, await timeOnWebGpu(tf, step, { runs: setting.runs, warmup: 1, budgetMs: Number(option('cpu-budget', 60)) * 1000 }));
    result.numTensors = tf.memory().numTensors;
    dispose();
    await require('@segkit/backend-webgpu').webGpuBackendProvider.release();
    process.stdout.write(`\n@@RESULT ${JSON.stringify(result)}\n`);
    return;
  }
  if (flag('profile')) {
    timeOnBackend(backend, step, { runs: 1, warmup: setting.warmup });
    const gc = await gcDuring(() => profileKernels(step, { byShape: flag('by-shape') }));
    result.profile = { ...gc.result, gcMs: gc.ms, gcCount: gc.count };
  } else {
    // cpu: one warm-up, then as many runs as fit the budget (at least one).
    const cpu = backend === 'cpu';
    const budgetMs = cpu ? Number(option('cpu-budget', 60)) * 1000 : 120000;
    Object.assign(result, timeOnBackend(backend, step, { runs: cpu ? 3 : setting.runs, warmup: cpu ? 1 : setting.warmup, budgetMs }));
  }
  result.numTensors = tf.memory().numTensors;
  dispose();
  process.stdout.write(`\n@@RESULT ${JSON.stringify(result)}\n`);
}

/** Runs `fn` and sums V8's garbage collections meanwhile (perf_hooks 'gc' entries): { result, ms, count }. */
async function gcDuring(fn) {
  const { PerformanceObserver } = require('perf_hooks');
  const entries = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  const result = await fn();
  await new Promise((resolve) => setTimeout(resolve, 50)); // entries arrive asynchronously (not yet at setImmediate)
  observer.disconnect();
  return { result, ms: entries.reduce((sum, e) => sum + e.duration, 0), count: entries.length };
}

/** timeOnBackend for webgpu: each run ends with `await data()` of the loss (the runner's readback). */
async function timeOnWebGpu(tf, step, { runs, warmup, budgetMs }) {
  const once = async () => {
    const start = process.hrtime.bigint();
    const value = tf.tidy(step);
    await value.data();
    value.dispose();
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  for (let i = 0; i < warmup; i++) await once();
  const samples = [];
  let spent = 0;
  const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
  while (samples.length < runs && (samples.length === 0 || spent + median(samples) <= budgetMs)) {
    const ms = await once();
    samples.push(ms);
    spent += ms;
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return { medianMs: sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2, samples };
}

// ---------------------------------------------------------------------------------------------
// Orchestrator.

/** Runs a child and returns its @@RESULT JSON, or { error } (timeout, crash). */
function runChild(command, args, timeoutMs) {
  const child = spawnSync(command, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 26 });
  if (child.error && child.error.code === 'ETIMEDOUT') return { error: `over the time budget (child stopped after ${(timeoutMs / 1000).toFixed(0)} s)` };
  const line = (child.stdout || '').split('\n').find((l) => l.startsWith('@@RESULT '));
  if (!line) return { error: `failed: ${((child.stderr || '').trim().split('\n').slice(-3).join(' | ') || `exit ${child.status}`).slice(0, 300)}` };
  return JSON.parse(line.slice('@@RESULT '.length));
}

function measureTs(key, backend, { profile = false, timeoutMs, extraArgs = [] } = {}) {
  const args = [__filename, `--worker=${key}:${backend}`, ...(profile ? ['--profile', ...(flag('by-shape') ? ['--by-shape'] : [])] : []), ...extraArgs];
  return runChild(process.execPath, args, timeoutMs);
}

function torchAvailable() {
  if (flag('no-torch')) return false;
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  return probe.status === 0;
}

function measureTorch(key) {
  const setting = SETTINGS[key];
  const args = [path.join(__dirname, 'torch_models.py'), ...setting.torch, '--batch', String(setting.batch), '--size', String(setting.size),
    '--classes', String(setting.classes), '--runs', String(setting.runs), '--warmup', String(setting.warmup), '--threads', '2'];
  return runChild(PYTHON, args, 30 * 60 * 1000);
}

async function main() {
  const { printTable } = require('./backend-timing');
  const keys = option('only', Object.keys(SETTINGS).join(',')).split(',');
  for (const key of keys) if (!SETTINGS[key]) throw new Error(`--only: unknown setting '${key}' (known: ${Object.keys(SETTINGS).join(', ')})`);
  const backends = option('backends', 'native,cpu,webgpu').split(',');
  const cpuBudgetMs = Number(option('cpu-budget', 60)) * 1000;
  const withTorch = torchAvailable();
  console.log(`train-step: ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; SEGKIT_NUM_THREADS=${process.env.SEGKIT_NUM_THREADS ?? '(all)'}` +
    `; PyTorch ${withTorch ? 'yes (2 threads)' : 'not available'}`);

  if (flag('profile')) {
    const top = Number(option('top', 25));
    for (const key of keys) {
      const result = measureTs(key, 'native', { profile: true, timeoutMs: 30 * 60 * 1000 });
      if (result.error) {
        console.log(`\n${SETTINGS[key].name}: profile ${result.error}`);
        continue;
      }
      const { kernels, totalMs, wallMs, gcMs, gcCount } = result.profile;
      const rows = kernels.slice(0, top).map((k) => [k.name, String(k.calls), k.ms, `${((100 * k.ms) / totalMs).toFixed(1)}%`]);
      printTable(`${SETTINGS[key].name} on native, one iteration: ${wallMs.toFixed(0)} ms wall, ${totalMs.toFixed(0)} ms in ${kernels.reduce((n, k) => n + k.calls, 0)} kernel calls, ` +
        `${gcMs.toFixed(0)} ms in ${gcCount} garbage collection(s)`,
        ['kernel', 'calls', 'ms', 'share'], rows);
    }
    return;
  }

  const rows = [];
  const notes = [];
  for (const key of keys) {
    const setting = SETTINGS[key];
    const times = {};
    for (const backend of backends) {
      // The child gets the budget for its runs plus as much again for start-up and the warm-up.
      const budgeted = backend === 'cpu' || backend === 'webgpu';
      const timeoutMs = budgeted ? 3 * cpuBudgetMs + 60000 : 30 * 60 * 1000;
      const result = measureTs(key, backend, { timeoutMs, extraArgs: budgeted ? [`--cpu-budget=${cpuBudgetMs / 1000}`] : [] });
      if (result.adapter && !notes.some((n) => n.startsWith('webgpu adapter'))) notes.unshift(`webgpu ${result.adapter}${/CPU emulation/.test(result.adapter) ? ' — a CPU emulation of a GPU (lavapipe): the figure shows that training runs on WebGPU, not how fast a GPU is' : ''}`);
      times[backend] = result.error ? null : result.medianMs;
      if (result.error) notes.push(`${setting.name} on ${backend}: skipped, ${result.error}`);
      else if (result.samples.length < (backend === 'cpu' ? 3 : setting.runs)) notes.push(`${setting.name} on ${backend}: ${result.samples.length} timed run(s) within the budget`);
    }
    if (withTorch) {
      const result = measureTorch(key);
      times.torch = result.error ? null : result.medianMs;
      if (result.error) notes.push(`${setting.name} in PyTorch: ${result.error}`);
    }
    recordResult(key, 'train', 'native', times.native);
    recordResult(key, 'train', 'torch', times.torch);
    const ms = (value) => (value == null ? 'skipped' : value);
    const ratio = (a, b) => (a == null || b == null ? '-' : `${(a / b).toFixed(2)}x`);
    const row = [setting.name, ...backends.map((b) => ms(times[b]))];
    if (backends.includes('cpu') && backends.includes('native')) row.push(ratio(times.cpu, times.native));
    if (withTorch) row.push(ms(times.torch), ratio(times.native, times.torch));
    rows.push(row);
  }
  const columns = ['model (one training iteration)', ...backends.map((b) => `${b} ms`)];
  if (backends.includes('cpu') && backends.includes('native')) columns.push('cpu/native');
  if (withTorch) columns.push('torch ms', 'native/torch');
  printTable('Training iteration: forward + losses + backward + SGD step (median)', columns, rows);
  for (const note of notes) console.log(`  note: ${note}`);
  console.log(`  load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

module.exports = { SETTINGS, buildStep };

const workerArg = option('worker', null);
if (require.main === module) {
  (workerArg ? worker(...workerArg.split(':')) : main()).catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
