#!/usr/bin/env node
// Inference time per image, whole-image, batch 1, labels read back, for the demo UNet and PSPNet R50-D8 at
// 128×128 and 512×512: segkit in Node (native backend) and the TF.js export in Debian's Chromium on wasm
// and on webgl (SwiftShader: a CPU emulation of a GPU here, so only the Node figures say anything about
// speed). Also the web demo's page size (gzip). Medians; weights are random (time does not depend on them).
//   node bench/web-inference.js [--runs=3] [--runs-512=1] [--browser-512=unet|all|none] [--budget-s=240]   (build first: npx tsc -b)
// The onnxruntime-node column is filled by the ONNX exporter's bench (branch onnx-export); it stays '—' here.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
const { initSegmentor, exportTfjs } = require('@segkit/core');
const { buildWebDemo, DEMO_CONFIG } = require('../examples/web-demo/build');
const { serveStatic } = require('../examples/web-demo/serve');

const arg = (name, fallback) => (process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `--${name}=${fallback}`).split('=')[1];
const RUNS = Number(arg('runs', '3'));
/** 512×512 runs are long (PSPNet: over a minute in Node here): fewer of them. */
const RUNS_512 = Number(arg('runs-512', '1'));
const runsAt = (size) => (size >= 512 ? RUNS_512 : RUNS);
const BROWSER_512 = arg('browser-512', 'unet');
const BUDGET_MS = Number(arg('budget-s', '240')) * 1000;
const SIZES = [128, 512];
const MODELS = [
  { name: 'UNet-S5-D16 (demo, 16 ch)', key: 'unet', config: DEMO_CONFIG },
  { name: 'PSPNet R50-D8', key: 'pspnet', config: path.resolve(__dirname, '../configs/pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.ts') },
];
const quiet = { info() {}, warn() {} };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function nodeTimes(handle, size) {
  const image = tf.randomUniform([1, size, size, 3], -1, 1, 'float32', 0);
  const times = [];
  for (let run = 0; run <= runsAt(size); run++) {
    const started = performance.now();
    const labels = tf.tidy(() => handle.model.labelsFromLogits(handle.model.inference(image, { mode: 'whole' })));
    await labels.data();
    labels.dispose();
    if (run > 0) times.push(performance.now() - started);
  }
  image.dispose();
  return times;
}

/** Loads `model` in a page on `backend` and times it at each size; a load or a size over the budget is noted. */
async function benchInPage(context, url, backend, model, results) {
  const page = await context.newPage();
  const modelPath = model.key === 'unet' ? 'model/model.json' : `${model.key}/model.json`;
  // Loading and building a model (PSPNet: 190 MB of weights) can exceed the budget: noted, not fatal.
  const loaded = await page
    .goto(`${url}?backend=${backend}&sample=none&model=${modelPath}`, { timeout: BUDGET_MS })
    .then(() => page.waitForFunction(() => window.segkitDemo && (window.segkitDemo.result || window.segkitDemo.error), null, { timeout: BUDGET_MS }))
    .then(() => true, () => false);
  if (!loaded) {
    for (const size of SIZES) results[`${model.key}:${size}:${backend}`] = `load > ${BUDGET_MS / 1000} s`;
    console.log(`chromium ${backend} ${model.key}: not loaded within ${BUDGET_MS / 1000} s`);
    return;
  }
  const error = await page.evaluate(() => window.segkitDemo.error);
  if (error) throw new Error(`${backend} ${model.key}: ${error}`);
  for (const size of SIZES) {
    const key = `${model.key}:${size}:${backend}`;
    if (size === 512 && BROWSER_512 !== 'all' && !(BROWSER_512 === 'unet' && model.key === 'unet')) {
      results[key] = 'not run';
      continue;
    }
    const timer = new Promise((resolve) => setTimeout(() => resolve('timeout'), BUDGET_MS));
    const times = await Promise.race([page.evaluate(([s, runs]) => window.segkitDemo.benchmark(s, s, runs), [size, runsAt(size)]), timer]);
    results[key] = times === 'timeout' ? `> ${BUDGET_MS / 1000} s` : median(times);
    console.log(`chromium ${backend} ${model.key} ${size}: ${typeof results[key] === 'number' ? `${results[key].toFixed(1)} ms` : results[key]}`);
    if (times === 'timeout') break;
  }
}

async function main() {
  const site = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-web-bench-'));
  const results = {};
  let built;
  for (const model of MODELS) {
    const handle = await initSegmentor(model.config, undefined, { backend: 'native', cfgOptions: ['model.pretrained=null'], logger: quiet });
    if (model.key === 'unet') built = await buildWebDemo({ handle, outDir: site });
    else await exportTfjs(handle, path.join(site, model.key), { output: 'logits', bakeNormalization: true });
    for (const size of SIZES) {
      results[`${model.key}:${size}:native`] = median(await nodeTimes(handle, size));
      console.log(`node native ${model.key} ${size}: ${results[`${model.key}:${size}:native`].toFixed(1)} ms`);
    }
    handle.dispose();
  }
  const server = await serveStatic(site);
  const { chromium } = require('playwright-core');
  const { CHROMIUM, CHROMIUM_ARGS } = require('../examples/web-demo/chromium');
  try {
    for (const backend of ['wasm', 'webgl']) {
      for (const model of MODELS) {
        // A fresh browser per case: work a timed-out case left queued must not slow down the next one.
        const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-web-bench-profile-'));
        const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
        try {
          await benchInPage(context, server.url, backend, model, results);
        } finally {
          await context.close();
          fs.rmSync(profile, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await server.close();
  }
  const cell = (value) => (typeof value === 'number' ? value.toFixed(1) : value ?? '—');
  const ratio = (value, base) => (typeof value === 'number' ? `${(value / base).toFixed(1)}×` : '');
  const header = ['model', 'size', 'native (Node) ms', 'onnxruntime-node ms', 'Chromium wasm ms', 'Chromium webgl* ms'];
  const rows = [];
  for (const model of MODELS) {
    for (const size of SIZES) {
      const base = results[`${model.key}:${size}:native`];
      const wasm = results[`${model.key}:${size}:wasm`];
      const webgl = results[`${model.key}:${size}:webgl`];
      rows.push([model.name, `${size}×${size}`, cell(base), '— (onnx-export)', `${cell(wasm)} ${ratio(wasm, base)}`.trim(), `${cell(webgl)} ${ratio(webgl, base)}`.trim()]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(`\nInference per image (whole, batch 1, labels read back), median of ${RUNS} runs (${RUNS_512} at 512×512) after 1 warm-up; ratios vs native; the host's 2 cores were shared with other jobs`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));
  console.log('* webgl is SwiftShader (CPU emulation of a GPU) in headless Chromium: not a GPU figure.');
  const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
  console.log('\nweb demo page size');
  for (const { file, bytes, gzip } of [...built.page, ...built.wasm, ...built.model]) console.log(`  ${file.padEnd(40)} ${kib(bytes).padStart(9)}  gzip ${kib(gzip).padStart(8)}`);
  fs.rmSync(site, { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
