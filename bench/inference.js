#!/usr/bin/env node
// Inference beside PyTorch (issue #17): eval-mode logits of one image, median of a few runs after a warm-up,
// each measurement in its own child process (clean heap):
//   UNet-S5-D16 base 64, DRIVE-sized 584×565, slide inference crop 64 stride 42 (182 windows; the config's test_cfg),
//   at each window batch size of --window-batches (test_cfg.batch_size; default 1,4,8,16);
//   PSPNet R50-D8, whole-image inference at 512×1024.
// PyTorch (bench/torch_models.py --task slide|whole, 2 threads, slide windows 8 at a time) when /usr/bin/python3 has torch.
// The summary records the slide figure at segkit's default batch size (defaultSlideBatchSize of the crop, what a
// config without batch_size gets) beside PyTorch's.
//   node bench/inference.js [--only=unet64,pspnet] [--runs=3] [--window-batches=1,4,8,16] [--no-torch]      (build first: npx tsc -b)
'use strict';
const path = require('path');
const os = require('os');
const { spawnSync } = require('child_process');
const { recordResult } = require('./summary');

const CONFIGS = path.resolve(__dirname, '../configs');
const PYTHON = '/usr/bin/python3';
const option = (name, fallback) => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? arg.slice(name.length + 3) : fallback;
};
const flag = (name) => process.argv.includes(`--${name}`);
const base = (b) => [`model.backbone.base_channels=${b}`, `model.decode_head.in_channels=${b}`, `model.decode_head.channels=${b}`, `model.auxiliary_head.in_channels=${2 * b}`, `model.auxiliary_head.channels=${b}`];

const SETTINGS = {
  unet64: {
    name: 'UNet-S5-D16 base 64, 584×565 slide 64/42',
    config: 'unet/fcn_unet_s5-d16_ce-1.0-dice-3.0_64x64_40k_drive.ts', options: base(64),
    height: 584, width: 565, classes: 2, slideCrop: [64, 64],
    torch: ['--model', 'unet', '--base', '64', '--classes', '2', '--task', 'slide', '--height', '584', '--width', '565', '--crop', '64', '--stride', '42'],
  },
  pspnet: {
    name: 'PSPNet R50-D8, 512×1024 whole',
    config: 'pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.ts', options: ['model.pretrained=null'],
    height: 512, width: 1024, classes: 19,
    torch: ['--model', 'pspnet', '--classes', '19', '--task', 'whole', '--height', '512', '--width', '1024'],
  },
};

async function worker(key) {
  const tf = require('@tensorflow/tfjs-core');
  const { loadConfigAndKernel } = require('@segkit/core');
  const { timeOnBackend } = require('./backend-timing');
  const setting = SETTINGS[key];
  const windowBatch = option('window-batch', null);
  const cfgOptions = [...setting.options, ...(windowBatch ? [`model.test_cfg.batch_size=${windowBatch}`] : [])];
  const { config, kernel } = await loadConfigAndKernel(path.join(CONFIGS, setting.config), { cfgOptions, backend: 'native', logger: { info() {}, warn() {} } });
  const model = kernel.build('segmentors', config.model, { path: 'model' });
  model.eval();
  const image = tf.randomUniform([1, setting.height, setting.width, 3], -1, 1, 'float32', 1);
  const result = timeOnBackend(kernel.backend, () => model.inference(image), { runs: Number(option('runs', 3)), warmup: 1, budgetMs: 600000 });
  result.peakRssMb = process.resourceUsage().maxRSS / 1024;
  tf.dispose(image);
  model.dispose();
  process.stdout.write(`\n@@RESULT ${JSON.stringify(result)}\n`);
}

function runChild(command, args) {
  const child = spawnSync(command, args, { encoding: 'utf8', timeout: 60 * 60 * 1000, maxBuffer: 1 << 26 });
  const line = (child.stdout || '').split('\n').find((l) => l.startsWith('@@RESULT '));
  if (!line) return { error: `failed: ${((child.stderr || '').trim().split('\n').slice(-3).join(' | ') || `exit ${child.status ?? child.signal}`).slice(0, 300)}` };
  return JSON.parse(line.slice('@@RESULT '.length));
}

function main() {
  const { printTable } = require('./backend-timing');
  const keys = option('only', Object.keys(SETTINGS).join(',')).split(',');
  for (const key of keys) if (!SETTINGS[key]) throw new Error(`--only: unknown setting '${key}' (known: ${Object.keys(SETTINGS).join(', ')})`);
  const withTorch = !flag('no-torch') && spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  console.log(`inference: ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; PyTorch ${withTorch ? 'yes (2 threads)' : 'not available'}`);
  const { defaultSlideBatchSize } = require('@segkit/core');
  const rows = [];
  const cell = (r) => (r.error ? r.error : r.medianMs);
  const ratio = (a, b) => (a.error || b.error ? '-' : `${(a.medianMs / b.medianMs).toFixed(2)}x`);
  for (const key of keys) {
    const setting = SETTINGS[key];
    const torch = withTorch ? runChild(PYTHON, [path.join(__dirname, 'torch_models.py'), ...setting.torch, '--runs', option('runs', 3), '--warmup', '1', '--threads', '2']) : { error: 'not run' };
    if (!torch.error) recordResult(key, 'inference', 'torch', torch.medianMs, 'ms');
    // Slide inference: one native measurement per window batch size (test_cfg.batch_size), in separate processes.
    // The default is always measured: it is the figure the summary records.
    const defaultBatch = setting.slideCrop ? defaultSlideBatchSize(setting.slideCrop) : null;
    const batches = setting.slideCrop ? [...new Set([...option('window-batches', '1,4,8,16').split(',').map(Number), defaultBatch])].sort((a, b) => a - b) : [null];
    for (const batch of batches) {
      const native = runChild(process.execPath, [__filename, `--worker=${key}`, `--runs=${option('runs', 3)}`, ...(batch ? [`--window-batch=${batch}`] : [])]);
      if (!native.error && (batch === null || batch === defaultBatch)) recordResult(key, 'inference', 'native', native.medianMs, 'ms', batch === null ? undefined : `slide batch_size ${batch}`);
      const label = batch === null ? setting.name : `${setting.name}, batch_size ${batch}${batch === defaultBatch ? ' (default)' : ''}`;
      rows.push([label, cell(native), cell(torch), ratio(native, torch)]);
    }
  }
  printTable('Inference, one image, eval mode (median ms; PyTorch slides 8 windows per batch)', ['model', 'native ms', 'torch ms', 'native/torch'], rows);
}

const workerKey = option('worker', null);
if (workerKey) worker(workerKey).catch((error) => { console.error(error); process.exit(1); });
else main();
