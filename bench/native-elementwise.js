#!/usr/bin/env node
// Per-kernel timing of the native addon's element-wise, batch-norm, pooling, resize and optimizer
// kernels on every ISA path this CPU runs (avx512, avx2-fma, portable: switched in this process with
// setMicroKernel, the one dispatch decision all kernels follow), on the activation shapes of a UNet
// training step (batch 4, 64², base 16 and 64). Paths run interleaved, so machine load shifts them alike;
// the table shows medians and each path's speed-up over portable. --baseline=<addon.node> adds another
// build of the addon (e.g. one saved before a change) as a further column, timed in the same rounds.
//   node bench/native-elementwise.js [--rounds=15] [--threads=N] [--baseline=/tmp/old.node] [--only=substring]
// Build first (npx tsc -b; the addon builds at npm install).
'use strict';
const os = require('os');
const { loadAddon } = require('../plugins/backend-cpu-native');
const { packGeometry } = require('../plugins/backend-cpu-native/dist/src/engine');

const option = (name, fallback) => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? arg.slice(name.length + 3) : fallback;
};
const ROUNDS = Number(option('rounds', 15));
const ONLY = option('only', '');

const loaded = loadAddon();
if (!loaded.addon) throw new Error(`native addon not loaded: ${loaded.error}`);
const addon = loaded.addon;
const threads = option('threads', null);
if (threads) addon.setNumThreads(Number(threads));
const baselinePath = option('baseline', null);
const baseline = baselinePath ? require(baselinePath) : null;
if (baseline && threads) baseline.setNumThreads(Number(threads));

let seed = 1;
function random(n, low = -1, high = 1) {
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    values[i] = low + ((seed >>> 8) / 16777216) * (high - low);
  }
  return values;
}

/** Geometry of a 2x2 stride-2 max pool or of a resize from [h, w] to [outH, outW]. */
const geometry = (batch, h, w, c, outH, outW, k = 1, stride = 1) => packGeometry({
  batch, inH: h, inW: w, inC: c, outH, outW, outC: c, kH: k, kW: k, strideH: stride, strideW: stride,
  dilH: 1, dilW: 1, padTop: 0, padLeft: 0,
});

/** One benchmark case per kernel and shape: a closure running it on a given addon. */
function cases() {
  const list = [];
  const add = (name, shape, make) => { if (!ONLY || name.includes(ONLY)) list.push({ name, shape, make }); };
  for (const [h, c] of [[64, 16], [64, 64], [32, 128], [16, 256]]) {
    const rows = 4 * h * h, n = rows * c, shape = `[4,${h},${h},${c}]`;
    add('batchNormTrain+relu', shape, () => {
      const x = random(n), scale = random(c, 0.5, 1.5), offset = random(c), out = new Float32Array(n);
      const mean = new Float32Array(c), variance = new Float32Array(c);
      return (a) => a.batchNormTrain(x, rows, c, scale, offset, 1e-5, true, out, mean, variance);
    });
    add('batchNormReluGrad', shape, () => {
      const x = random(n), dy = random(n), scale = random(c, 0.5, 1.5), offset = random(c), dx = new Float32Array(n);
      const dScale = new Float32Array(c), dOffset = new Float32Array(c);
      return (a) => a.batchNormReluGrad(x, dy, rows, c, scale, offset, 1e-5, dx, dScale, dOffset);
    });
    add('batchNormGrad', shape, () => {
      const x = random(n), dy = random(n), scale = random(c, 0.5, 1.5), dx = new Float32Array(n);
      const dScale = new Float32Array(c), dOffset = new Float32Array(c);
      return (a) => a.batchNormGrad(x, dy, rows, c, scale, 1e-5, dx, dScale, dOffset);
    });
    add('batchNorm (inference)', shape, () => {
      const x = random(n), mean = random(c), scale = random(c), offset = random(c), out = new Float32Array(n);
      return (a) => a.batchNorm(x, out, rows, c, mean, scale, offset);
    });
    add('maxPool 2x2/2', shape, () => {
      const x = random(n), out = new Float32Array(n / 4), g = geometry(4, h, h, c, h / 2, h / 2, 2, 2);
      return (a) => a.maxPool(x, out, g);
    });
    add('maxPoolGrad 2x2/2', shape, () => {
      const x = random(n), dy = random(n / 4), dx = new Float32Array(n), g = geometry(4, h, h, c, h / 2, h / 2, 2, 2);
      return (a) => a.maxPoolGrad(dy, x, dx, g);
    });
    add('resizeBilinear x2', shape, () => {
      const x = random(n / 4), out = new Float32Array(n), g = geometry(4, h / 2, h / 2, c, h, h);
      return (a) => a.resizeBilinear(x, out, g, false, false);
    });
    add('resizeBilinearGrad x2', shape, () => {
      const dy = random(n), dx = new Float32Array(n / 4), g = geometry(4, h / 2, h / 2, c, h, h);
      return (a) => a.resizeBilinearGrad(dy, dx, g, false, false);
    });
    add('relu', shape, () => {
      const x = random(n), out = new Float32Array(n);
      return (a) => a.unary(0, x, out, 0);
    });
    add('add (same shape)', shape, () => {
      const x = random(n), y = random(n), out = new Float32Array(n), s = Int32Array.of(rows, c);
      return (a) => a.binaryBroadcast(0, x, s, y, s, out, s);
    });
    add('mul by channel vector', shape, () => {
      const x = random(n), y = random(c), out = new Float32Array(n), s = Int32Array.of(rows, c), t = Int32Array.of(c);
      return (a) => a.binaryBroadcast(2, x, s, y, t, out, s);
    });
  }
  for (const n of [9 * 64 * 64, 9 * 512 * 512]) {
    add('sgdUpdate (momentum)', `[${n}]`, () => {
      const p = random(n), g = random(n), b = random(n), np = new Float32Array(n), nb = new Float32Array(n);
      return (a) => a.sgdUpdate(p, g, b, np, nb, 0.01, 0.9, 0, 5e-4, false);
    });
    add('adamUpdate', `[${n}]`, () => {
      const p = random(n), g = random(n), m = random(n), v = random(n, 0, 1), np = new Float32Array(n);
      const nm = new Float32Array(n), nv = new Float32Array(n), hyper = Float64Array.of(1e-3, 0.9, 0.999, 1e-8, 0.01, 10);
      return (a) => a.adamUpdate(p, g, m, v, null, np, nm, nv, null, hyper, true, false);
    });
  }
  for (const [rows, columns] of [[4 * 64 * 64, 2], [2 * 64 * 64, 19]]) {
    add('softmax', `[${rows},${columns}]`, () => {
      const x = random(rows * columns, -4, 4), out = new Float32Array(rows * columns);
      return (a) => a.softmax(x, out, rows, columns);
    });
  }
  return list;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Median ms of one call per column, the columns interleaved round by round. */
function timeColumns(columns) {
  const samples = columns.map(() => []);
  for (let round = -2; round < ROUNDS; round++) {
    columns.forEach((column, i) => {
      column.before();
      const start = process.hrtime.bigint();
      column.run();
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (round >= 0) samples[i].push(ms);
    });
  }
  return samples.map(median);
}

const kernelBefore = addon.microKernel();
const paths = addon.microKernels();
const loadAverage = os.loadavg().map((v) => v.toFixed(2)).join(' ');
console.log(`native element-wise kernels: ${os.cpus()[0].model}, ${os.cpus().length} cores, ${addon.numThreads()} thread(s), load average ${loadAverage}`);
console.log(`ISA paths: ${paths.join(', ')} (default ${kernelBefore})${baseline ? `; baseline ${baselinePath} (its default ${baseline.microKernel()})` : ''}; median of ${ROUNDS} rounds, ms`);
const speedups = paths.filter((p) => p !== 'portable');
const headers = ['kernel', 'shape', ...paths, ...(baseline ? ['baseline'] : []), ...speedups.map((p) => `${p}/portable`), ...(baseline ? [`baseline/${kernelBefore}`] : [])];
const rows = [];
for (const { name, shape, make } of cases()) {
  const run = make();
  const columns = paths.map((path) => ({ before: () => addon.setMicroKernel(path), run: () => run(addon) }));
  if (baseline) columns.push({ before: () => {}, run: () => run(baseline) });
  const ms = timeColumns(columns);
  const portable = ms[paths.indexOf('portable')];
  const ratio = (slow, fast) => `${(slow / fast).toFixed(2)}x`;
  rows.push([name, shape, ...ms.map((v) => v.toFixed(3)), ...speedups.map((p) => ratio(portable, ms[paths.indexOf(p)])),
    ...(baseline ? [ratio(ms[paths.length], ms[paths.indexOf(kernelBefore)])] : [])]);
}
addon.setMicroKernel(kernelBefore);
const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log(line(headers));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
console.log(`load average after: ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
