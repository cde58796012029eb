// Reusable timing helpers for backend benchmarks: time a closure on a tfjs backend (median of
// several runs, with a time budget) and print aligned tables.
'use strict';
const tf = require('@tensorflow/tfjs-core');
const { MathBackendCPU } = require('@tensorflow/tfjs-backend-cpu');

/**
 * Times `fn` on `backend`. `fn` builds and returns tensors (inside a tidy); the time includes the whole
 * computation. On cpu backends (cpu, native) a kernel has finished when its op returns, so the
 * outputs are disposed unread, as numpy's and PyTorch's timings drop theirs and as a training step
 * uses them: reading one out takes its array from native's buffer pool for good, and the next call's
 * fresh array was page faults the kernel never pays in training (GEMM 256: 1.2 ms against 0.2).
 * Other backends (webgpu) compute asynchronously and are read back. Runs until `runs` samples or the
 * budget is used up (at least one), after `warmup` untimed runs. Returns { medianMs, samples }.
 */
function timeOnBackend(backend, fn, { runs = 5, warmup = 1, budgetMs = 10000 } = {}) {
  const previous = tf.engine().backendName; // null before any backend was chosen
  tf.setBackend(backend);
  const readBack = !(tf.backend() instanceof MathBackendCPU);
  try {
    const once = () => {
      const start = process.hrtime.bigint();
      const outputs = tf.tidy(() => [fn()].flat());
      if (readBack) for (const output of outputs) output.dataSync();
      tf.dispose(outputs);
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    for (let i = 0; i < warmup; i++) once();
    const samples = [];
    let spent = 0;
    while (samples.length < runs && (samples.length === 0 || spent + median(samples) <= budgetMs)) {
      const ms = once();
      samples.push(ms);
      spent += ms;
    }
    return { medianMs: median(samples), samples };
  } finally {
    if (previous) tf.setBackend(previous);
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Runs `fn` once under tf.profile and sums kernel time by kernel name, largest first:
 * { kernels: [{ name, calls, ms }], totalMs (in kernels), wallMs }.
 */
async function profileKernels(fn, { byShape = false } = {}) {
  const start = process.hrtime.bigint();
  const profile = await tf.profile(() =>
    tf.tidy(() => {
      const outputs = [fn()].flat();
      for (const output of outputs) output.dataSync();
      return outputs;
    }),
  );
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  tf.dispose(profile.result);
  const byName = new Map();
  for (const kernel of profile.kernels) {
    // By shape, one row per kernel and input shapes: which layers of a model the time goes to.
    const key = byShape ? `${kernel.name} ${kernel.inputShapes.map((shape) => `[${shape}]`).join(' ')}` : kernel.name;
    const entry = byName.get(key) ?? { name: key, calls: 0, ms: 0 };
    entry.ms += await kernel.kernelTimeMs;
    entry.calls += 1;
    byName.set(key, entry);
  }
  const kernels = [...byName.values()].sort((a, b) => b.ms - a.ms);
  return { kernels, totalMs: kernels.reduce((sum, k) => sum + k.ms, 0), wallMs };
}

/** Prints a table: `columns` are header strings, `rows` arrays of cells (numbers are formatted). */
function printTable(title, columns, rows) {
  const format = (cell) => (typeof cell === 'number' ? (Math.abs(cell) >= 100 ? cell.toFixed(0) : Math.abs(cell) >= 10 ? cell.toFixed(1) : cell.toFixed(2)) : String(cell));
  const cells = [columns, ...rows.map((row) => row.map(format))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const line = (row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  console.log(`\n${title}`);
  console.log(line(columns));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of cells.slice(1)) console.log(line(row));
}

module.exports = { timeOnBackend, median, printTable, profileKernels };
