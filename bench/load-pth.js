#!/usr/bin/env node
// Loading a PSPNet R50-D8 checkpoint written by PyTorch (the full model of configs/_base_/models/pspnet_r50-d8.ts,
// ~49M float32 parameters from random weights, ~190 MB): seconds and peak RSS of segkit's reader
// (readTorchCheckpoint) and of torch.load on the same file, each in a fresh process, median of --runs.
// Needs Debian's python3-torch for /usr/bin/python3 (skipped with a note otherwise).
//   node bench/load-pth.js [--runs=3] [--keep]        (build first: npx tsc -b)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { printTable, median } = require('./backend-timing');

const PYTHON = '/usr/bin/python3';
const option = (name, fallback) => {
  const arg = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : arg.includes('=') ? arg.split('=')[1] : true;
};

// Child mode: read the checkpoint once and report time and memory as JSON.
async function segkitChild(file) {
  const { readTorchCheckpoint } = require('@segkit/core');
  const baseline = process.memoryUsage().rss;
  const started = process.hrtime.bigint();
  const checkpoint = await readTorchCheckpoint(file);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let params = 0;
  for (const tensor of checkpoint.tensors.values()) params += tensor.data.length;
  const peakRssMB = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ seconds, baselineRssMB: baseline / 2 ** 20, peakRssMB, tensors: checkpoint.tensors.size, params }));
}

const TORCH_CHILD = `
import json, resource, sys, time
import torch
baseline = int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize() / 2 ** 20
started = time.perf_counter()
checkpoint = torch.load(sys.argv[1], map_location='cpu')
seconds = time.perf_counter() - started
state = checkpoint['state_dict']
print(json.dumps({'seconds': seconds, 'baselineRssMB': baseline, 'peakRssMB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  'tensors': len(state), 'params': sum(t.numel() for t in state.values())}))
`;

const TORCH_WRITER = `
import collections, json, sys
import torch
spec = json.load(open(sys.argv[1]))
torch.manual_seed(0)
state = collections.OrderedDict()
for key, dtype, shape in spec:
    state[key] = torch.randint(0, 1000, shape, dtype=torch.int64) if dtype == 'int32' else torch.randn(shape)
meta = {'CLASSES': tuple(f'class{i}' for i in range(19)), 'iter': 40000, 'mmcv_version': '1.7.0'}
torch.save({'meta': meta, 'state_dict': state}, sys.argv[2])
`;

function run(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stdout;
}

/** Names, dtypes and PyTorch-layout shapes of segkit's PSPNet R50-D8 state dict. */
async function pspnetSpec() {
  const { loadConfigAndKernel } = require('@segkit/core');
  const { shapeInLayout } = require('@segkit/core');
  const quiet = { info() {}, warn() {} };
  const config = path.resolve(__dirname, '../configs/_base_/models/pspnet_r50-d8.ts');
  const { kernel, config: cfg } = await loadConfigAndKernel(config, { backend: 'cpu', cfgOptions: ['model.pretrained=null'], logger: quiet });
  const model = kernel.build('segmentors', cfg.model, { path: 'model' });
  const spec = [...model.stateDict()].map(([key, variable]) => [key, variable.dtype, shapeInLayout(variable.shape, 'segkit', 'torch')]);
  model.dispose();
  return spec;
}

async function main() {
  if (!fs.existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import torch']).status !== 0) {
    console.log(`bench/load-pth.js: skipped (needs PyTorch for ${PYTHON}: apt-get install -y python3-torch libopenblas0-openmp)`);
    return;
  }
  const runs = Number(option('runs', 3));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-load-pth-'));
  const file = path.join(dir, 'pspnet_r50-d8.pth');
  try {
    const spec = await pspnetSpec();
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
    run(PYTHON, ['-c', TORCH_WRITER, path.join(dir, 'spec.json'), file]);
    const sizeMB = fs.statSync(file).size / 2 ** 20;
    const measure = (label, command, args) => {
      const samples = Array.from({ length: runs }, () => JSON.parse(run(command, args).trim().split('\n').pop()));
      const { tensors, params } = samples[0];
      return [label, median(samples.map((s) => s.seconds)), median(samples.map((s) => s.peakRssMB)), median(samples.map((s) => s.peakRssMB - s.baselineRssMB)), tensors, (params / 1e6).toFixed(1)];
    };
    const torchVersion = run(PYTHON, ['-c', 'import torch; print(torch.__version__)']).trim();
    const rows = [
      measure('segkit readTorchCheckpoint', process.execPath, [__filename, '--child-segkit', file]),
      measure(`torch.load (torch ${torchVersion})`, PYTHON, ['-c', TORCH_CHILD, file]),
    ];
    printTable(
      `Loading PSPNet R50-D8 (${sizeMB.toFixed(0)} MB .pth written by torch.save), median of ${runs} fresh processes`,
      ['reader', 's', 'peak RSS MB', 'RSS growth MB', 'tensors', 'M params'],
      rows,
    );
    console.log('RSS growth = peak RSS minus the process RSS just before the load (runtime and libraries already loaded).');
  } finally {
    if (!option('keep', false)) fs.rmSync(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
}

if (process.argv.includes('--child-segkit')) {
  segkitChild(process.argv[process.argv.indexOf('--child-segkit') + 1]).catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
