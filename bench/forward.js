#!/usr/bin/env node
// One forward pass (whole inference, eval mode) at batch 1, 64×64, of the two base models
// (configs/_base_/models: PSPNet R50-D8 and UNet-S5-D16) on the default backend ('auto') or --backend=NAME.
// Median of 5 runs after one warm-up.   node bench/forward.js [--backend=cpu]   (build first: npx tsc -b)
'use strict';
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
const { loadConfigAndKernel } = require('@segkit/core');
const { timeOnBackend, printTable } = require('./backend-timing');

const MODELS = ['pspnet_r50-d8.ts', 'fcn_unet_s5-d16.ts'];
const backendArg = (process.argv.find((a) => a.startsWith('--backend=')) ?? '--backend=auto').slice('--backend='.length);

async function main() {
  const quiet = { info() {}, warn() {} };
  const rows = [];
  let backend = backendArg;
  for (const file of MODELS) {
    const loaded = await loadConfigAndKernel(path.resolve(__dirname, '../configs/_base_/models', file), { backend: backendArg, cfgOptions: ['model.pretrained=null'], logger: quiet });
    backend = loaded.kernel.backend;
    const model = loaded.kernel.build('segmentors', loaded.config.model, { path: 'model' });
    model.eval();
    const image = tf.randomUniform([1, 64, 64, 3], -1, 1, 'float32', 0);
    const { medianMs, samples } = timeOnBackend(backend, () => model.inference(image, { mode: 'whole' }), { runs: 5, warmup: 1, budgetMs: 120000 });
    rows.push([file.replace('.ts', ''), medianMs, String(samples.length)]);
    tf.dispose(image);
    model.dispose();
  }
  printTable(`Forward pass (whole inference), batch 1, 64×64, backend ${backend}: median ms`, ['model', 'ms', 'runs'], rows);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
