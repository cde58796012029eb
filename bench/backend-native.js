#!/usr/bin/env node
// Kernel benchmark of the `native` backend against tfjs's `cpu`: GEMM GFLOP/s, then 3x3 'same'
// convolutions forward / grad-input / grad-filter. cpu measurements whose estimated time exceeds
// the budget are skipped (and said so). Optionally PyTorch on the same shapes, when Debian's
// python3-torch is installed for /usr/bin/python3.
//   node bench/backend-native.js [--cpu-budget-ms=4000] [--no-cpu] [--no-torch]
// Build first: npx tsc -b plugins/backend-cpu-native (and the addon: npm rebuild @segkit/backend-cpu-native).
'use strict';
const { spawnSync } = require('node:child_process');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const { timeOnBackend, printTable } = require('./backend-timing');
const { nativeBackendProvider, loadAddon } = require('../plugins/backend-cpu-native');

const option = (name, fallback) => {
  const arg = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : arg.includes('=') ? arg.split('=')[1] : true;
};
const CPU_BUDGET_MS = Number(option('cpu-budget-ms', 4000));
const RUN_CPU = !option('no-cpu', false);
const RUN_TORCH = !option('no-torch', false);

const GEMM_SIZES = [256, 512, 1024, 2048];
const CONV_SHAPES = [
  [4, 64, 64, 16, 16],
  [4, 64, 64, 64, 64],
  [4, 32, 32, 128, 128],
  [4, 16, 16, 256, 256],
];
const PASSES = ['forward', 'grad-input', 'grad-filter'];

/** The conv pass as a closure over fresh random tensors (made on the active backend). */
function convPass(pass, [n, h, w, cin, cout]) {
  const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };
  return () => {
    const x = tf.randomUniform([n, h, w, cin], -1, 1, 'float32', 1);
    const filter = tf.randomUniform([3, 3, cin, cout], -1, 1, 'float32', 2);
    const dy = tf.randomUniform([n, h, w, cout], -1, 1, 'float32', 3);
    if (pass === 'forward') return tf.conv2d(x, filter, 1, 'same');
    if (pass === 'grad-input') return tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: [n, h, w, cin] });
    return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: [3, 3, cin, cout] });
  };
}

/** Times the pass; inputs are created inside, so subtract a measurement of input creation alone. */
function timeConv(backend, pass, shape, options) {
  const [n, h, w, cin, cout] = shape;
  const makeInputs = () => [tf.randomUniform([n, h, w, cin], -1, 1, 'float32', 1), tf.randomUniform([3, 3, cin, cout], -1, 1, 'float32', 2), tf.randomUniform([n, h, w, cout], -1, 1, 'float32', 3)];
  const total = timeOnBackend(backend, convPass(pass, shape), options).medianMs;
  const inputs = timeOnBackend(backend, makeInputs, { runs: 3 }).medianMs;
  return Math.max(1e-3, total - inputs);
}

const convFlops = ([n, h, w, cin, cout]) => 2 * n * h * w * cin * cout * 9;

async function main() {
  tf.env().set('IS_TEST', true); // no "use tfjs-node" banner
  const reason = await nativeBackendProvider.load();
  if (reason) {
    console.error(`native backend unavailable: ${reason}`);
    process.exit(1);
  }
  const addon = loadAddon().addon;
  console.log(`native backend: micro-kernel ${addon.microKernel()}, ${addon.numThreads()} thread(s) (SEGKIT_NUM_THREADS); cpu budget ${CPU_BUDGET_MS} ms per measurement`);

  // (a) GEMM
  const gemmRows = [];
  let cpuRate = null; // GFLOP/s of the last cpu measurement, to predict the next one
  for (const size of GEMM_SIZES) {
    const flops = 2 * size ** 3;
    const matmul = () => tf.matMul(tf.randomUniform([size, size], -1, 1, 'float32', 1), tf.randomUniform([size, size], -1, 1, 'float32', 2));
    const inputs = () => [tf.randomUniform([size, size], -1, 1, 'float32', 1), tf.randomUniform([size, size], -1, 1, 'float32', 2)];
    const nativeMs = timeOnBackend('native', matmul, { runs: 7 }).medianMs - timeOnBackend('native', inputs, { runs: 3 }).medianMs;
    let cpuCell = 'skipped';
    let ratio = '';
    if (RUN_CPU && (cpuRate === null || flops / (cpuRate * 1e6) <= CPU_BUDGET_MS)) {
      const cpuMs = timeOnBackend('cpu', matmul, { runs: 3, warmup: 0, budgetMs: CPU_BUDGET_MS }).medianMs - timeOnBackend('cpu', inputs, { runs: 3 }).medianMs;
      cpuRate = flops / cpuMs / 1e6;
      cpuCell = cpuRate;
      ratio = `${(cpuMs / nativeMs).toFixed(0)}x`;
    } else if (RUN_CPU) {
      cpuCell = `skipped (est. ${(flops / (cpuRate * 1e9)).toFixed(0)} s)`;
    }
    gemmRows.push([`${size}`, nativeMs, flops / nativeMs / 1e6, cpuCell, ratio]);
  }
  printTable('(a) GEMM [n,n]x[n,n], float32', ['n', 'native ms', 'native GFLOP/s', 'cpu GFLOP/s', 'native speedup'], gemmRows);

  // (b) 3x3 'same' convolutions
  const convRows = [];
  const cpuRates = {};
  for (const shape of CONV_SHAPES) {
    for (const pass of PASSES) {
      const flops = convFlops(shape);
      const nativeMs = timeConv('native', pass, shape, { runs: 7 });
      const row = [`[${shape.slice(0, 4)}]->${shape[4]}`, pass, nativeMs, flops / nativeMs / 1e6];
      const rate = cpuRates[pass];
      if (!RUN_CPU) {
        row.push('off', '', '');
      } else if (rate !== undefined && flops / (rate * 1e6) > CPU_BUDGET_MS) {
        row.push(`skipped (est. ${(flops / (rate * 1e9)).toFixed(0)} s)`, '', '');
      } else {
        const cpuMs = timeConv('cpu', pass, shape, { runs: 3, warmup: 0, budgetMs: CPU_BUDGET_MS });
        cpuRates[pass] = flops / cpuMs / 1e6;
        row.push(cpuMs, cpuRates[pass], `${(cpuMs / nativeMs).toFixed(0)}x`);
      }
      convRows.push(row);
    }
  }
  printTable("(b) conv2d 3x3 'same', stride 1, NHWC (median ms)", ['x -> out channels', 'pass', 'native ms', 'native GFLOP/s', 'cpu ms', 'cpu GFLOP/s', 'native speedup'], convRows);

  if (RUN_TORCH) printTorch(addon.numThreads());
}

/** PyTorch's numbers for the same convolutions, when /usr/bin/python3 has torch. */
function printTorch(threads) {
  const script = `
import sys, time, torch
torch.set_num_threads(${threads})
shapes = ${JSON.stringify(CONV_SHAPES)}
def median(xs):
    xs = sorted(xs); return xs[len(xs) // 2]
for n, h, w, cin, cout in shapes:
    x = torch.randn(n, cin, h, w, requires_grad=True); conv = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    dy = torch.randn(n, cout, h, w)
    def fwd():
        with torch.no_grad(): conv(x)
    def gi(): torch.nn.grad.conv2d_input(x.shape, conv.weight, dy, padding=1)
    def gf(): torch.nn.grad.conv2d_weight(x, conv.weight.shape, dy, padding=1)
    for name, f in (("forward", fwd), ("grad-input", gi), ("grad-filter", gf)):
        f(); ts = []
        for _ in range(7):
            t = time.perf_counter(); f(); ts.append((time.perf_counter() - t) * 1000)
        ms = median(ts); print(f"[{n},{h},{w},{cin}]->{cout}\\t{name}\\t{ms:.3f}\\t{2*n*h*w*cin*cout*9/ms/1e6:.1f}")
`;
  const result = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' });
  if (result.status !== 0) {
    console.log('\n(c) PyTorch: skipped (python3-torch is not installed for /usr/bin/python3)');
    return;
  }
  const rows = result.stdout.trim().split('\n').map((line) => line.split('\t')).map(([shape, pass, ms, rate]) => [shape, pass, Number(ms), Number(rate)]);
  printTable(`(c) PyTorch ${threads} thread(s), same convolutions (NCHW)`, ['x -> out channels', 'pass', 'torch ms', 'torch GFLOP/s'], rows);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
