#!/usr/bin/env node
// Inference time per image of exported models: segkit on a tfjs backend (default `native`) beside
// onnxruntime-node on the ONNX graph `segkit export` writes (dynamic H×W, logits, normalization not baked),
// for the demo UNet (UNet-S5-D16 + FCN, 16 base channels) and PSPNet R50-D8, at 128×128 and 512×512,
// random weights, batch 1. Median of up to 5 runs after one warm-up (fewer when a cell's budget runs out).
// The last column is max |onnx − segkit| / max |segkit| on the timed input (a sanity check, not a test).
//   node bench/export-inference.js [--backend=native] [--sizes=128,512] [--budget-ms=60000]   (build first: npx tsc -b)
'use strict';
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
const ort = require('onnxruntime-node');
const { initSegmentor, segmentorOnnxBytes } = require('@segkit/core');
const { timeOnBackend, median, printTable } = require('./backend-timing');

const arg = (name, fallback) => (process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `--${name}=${fallback}`).slice(name.length + 3);
const backendArg = arg('backend', 'native');
const sizes = arg('sizes', '128,512').split(',').map(Number);
const budgetMs = Number(arg('budget-ms', '60000'));
const configs = path.resolve(__dirname, '../configs');
const MODELS = [
  { name: 'UNet-S5-D16 (demo)', config: path.join(configs, 'demo/unet-s5-d16_tricks_64x64_synthetic-drive.ts'), cfgOptions: [] },
  { name: 'PSPNet R50-D8', config: path.join(configs, '_base_/models/pspnet_r50-d8.ts'), cfgOptions: ['model.pretrained=null'] },
];

/** Times an async closure: median ms of up to `runs` runs after one warm-up, within the budget. */
async function timeAsync(fn, runs = 5) {
  await fn();
  const samples = [];
  let spent = 0;
  while (samples.length < runs && (samples.length === 0 || spent + median(samples) <= budgetMs)) {
    const start = process.hrtime.bigint();
    await fn();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    samples.push(ms);
    spent += ms;
  }
  return { medianMs: median(samples), runs: samples.length };
}

async function main() {
  const quiet = { info() {}, warn() {} };
  const rows = [];
  let backend = backendArg;
  for (const { name, config, cfgOptions } of MODELS) {
    const handle = await initSegmentor(config, undefined, { backend: backendArg, cfgOptions, logger: quiet });
    backend = handle.kernel.backend;
    const exportStart = process.hrtime.bigint();
    const { bytes } = await segmentorOnnxBytes(handle.model, { output: 'logits', normalization: null });
    const exportMs = Number(process.hrtime.bigint() - exportStart) / 1e6;
    const session = await ort.InferenceSession.create(bytes);
    for (const size of sizes) {
      const image = tf.randomNormal([1, size, size, 3], 0, 1, 'float32', size);
      const native = timeOnBackend(backend, () => handle.model.inference(image, { mode: 'whole' }), { runs: 5, warmup: 1, budgetMs });
      const nchw = tf.tidy(() => tf.transpose(image, [0, 3, 1, 2]));
      const feeds = { image: new ort.Tensor('float32', await nchw.data(), [1, 3, size, size]) };
      const onnx = await timeAsync(() => session.run(feeds));
      // Sanity: the two outputs agree on the timed input.
      const reference = handle.model.inference(image, { mode: 'whole' });
      const { logits } = await session.run(feeds);
      const ours = tf.tidy(() => tf.transpose(tf.tensor4d(logits.data, logits.dims), [0, 2, 3, 1]));
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(ours, reference))).dataSync()[0] / tf.max(tf.abs(reference)).dataSync()[0]);
      rows.push([name, `${size}×${size}`, native.medianMs, onnx.medianMs, native.medianMs / onnx.medianMs, `${native.samples.length}/${onnx.runs}`, diff.toExponential(1)]);
      tf.dispose([image, nchw, reference, ours]);
    }
    rows.push([`  (export: ${(bytes.length / 2 ** 20).toFixed(1)} MB in ${(exportMs / 1000).toFixed(1)} s)`, '', '', '', '', '', '']);
    await session.release();
    handle.dispose();
  }
  printTable(
    `Inference per image, batch 1, random weights: segkit on '${backend}' vs onnxruntime-node ${ort.env.versions.node} (cpu EP) on the exported ONNX; median ms`,
    ['model', 'input', `segkit ${backend}`, 'onnxruntime', `${backend}/ort`, 'runs', 'rel diff'],
    rows,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
