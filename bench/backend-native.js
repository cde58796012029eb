#!/usr/bin/env node
// Kernel benchmark of the `native` backend against tfjs's `cpu`: GEMM GFLOP/s, then 3x3 'same'
// convolutions forward / grad-input / grad-filter, also on cpu with segkit's TypeScript conv kernels
// (registerFastCpuKernels). cpu measurements whose estimated time exceeds
// the budget are skipped (and said so). Optionally PyTorch on the same shapes, when Debian's
// python3-torch is installed for /usr/bin/python3.
//   node bench/backend-native.js [--cpu-budget-ms=4000] [--no-cpu] [--no-torch] [--rounds=5]
// Build first: npx tsc -b plugins/backend-cpu-native (and the addon: npm rebuild @segkit/backend-cpu-native).
'use strict';
const { spawnSync } = require('node:child_process');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const { timeOnBackend, median, printTable } = require('./backend-timing');
const { nativeBackendProvider, loadAddon, registerFastCpuKernels, describeNativeBackend } = require('../plugins/backend-cpu-native');

const option = (name, fallback) => {
  const arg = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : arg.includes('=') ? arg.split('=')[1] : true;
};
const CPU_BUDGET_MS = Number(option('cpu-budget-ms', 4000));
const RUN_CPU = !option('no-cpu', false);
const RUN_TORCH = !option('no-torch', false);
// Native and PyTorch convolutions alike are timed in this many rounds over all shapes (7 runs each, median),
// and the median of the rounds is printed: a burst of load from outside (a shared 2-vCPU machine) then
// skews one round's figure, not the table's (single rounds put passes 1.2-1.5x off their usual time).
// 5, not 3: bursts of 10-30 ms slowed 46-55 of 324 native measurements of one 3-round run (a sample
// over 1.4x its run's median), and one pass in a full run was slowed in 2 of its 3 rounds.
const ROUNDS_ARG = option('rounds', '5');
const ROUNDS = typeof ROUNDS_ARG === 'string' && /^[0-9]+$/.test(ROUNDS_ARG) ? Number(ROUNDS_ARG) : NaN;
if (!(ROUNDS >= 1)) {
  console.error(`bench/backend-native.js: --rounds: expected an integer of at least 1, got ${ROUNDS_ARG === true ? 'no value' : ROUNDS_ARG}`);
  process.exit(2);
}

const GEMM_SIZES = [256, 512, 1024, 2048];
// [batch, h, w, in, out]: the first four, then the other 3x3 layers of UNet-S5-D16 base 64 (b4 64²;
// encoder, then decoder convs after the skip concat) and of PSPNet R50-D8 (b2 256²: stem, layer1,
// layer2, FCN aux head, PSP bottleneck 4096->512 (77 GFLOP a pass); its dilated layers run as undilated
// 3x3 convolutions of the SpaceToBatchND-rearranged input, e.g. b32 10x10 512->512 'valid').
const CONV_SHAPES = [
  [4, 64, 64, 16, 16],
  [4, 64, 64, 64, 64],
  [4, 32, 32, 128, 128],
  [4, 16, 16, 256, 256],
  [4, 32, 32, 64, 128],
  [4, 16, 16, 128, 256],
  [4, 8, 8, 256, 512],
  [4, 8, 8, 512, 512],
  [4, 4, 4, 512, 1024],
  [4, 4, 4, 1024, 1024],
  [4, 8, 8, 1024, 512],
  [4, 64, 64, 128, 64],
  [2, 128, 128, 32, 32],
  [2, 128, 128, 32, 64],
  [2, 64, 64, 64, 64],
  [2, 32, 32, 128, 128],
  [2, 32, 32, 1024, 256],
  [2, 32, 32, 4096, 512],
];
const PASSES = ['forward', 'grad-input', 'grad-filter'];

/** Random inputs for one conv shape, made once; timed closures only run the kernel. */
function convInputs([n, h, w, cin, cout]) {
  return {
    x: tf.randomUniform([n, h, w, cin], -1, 1, 'float32', 1),
    filter: tf.randomUniform([3, 3, cin, cout], -1, 1, 'float32', 2),
    dy: tf.randomUniform([n, h, w, cout], -1, 1, 'float32', 3),
  };
}

/** The conv pass as a closure over prepared inputs. */
function convPass(pass, { x, filter, dy }) {
  const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };
  if (pass === 'forward') return () => tf.conv2d(x, filter, 1, 'same');
  if (pass === 'grad-input') return () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: x.shape });
  return () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: filter.shape });
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
  console.log(`native backend: ${describeNativeBackend(addon)} (SEGKIT_NATIVE_ISA, SEGKIT_NUM_THREADS); 3x3 stride-1 convs: ${addon.convAlgorithm()} (SEGKIT_NATIVE_CONV); cpu budget ${CPU_BUDGET_MS} ms per measurement`);

  // (a) GEMM
  const gemmRows = [];
  let cpuRate = null; // GFLOP/s of the last cpu measurement, to predict the next one
  for (const size of GEMM_SIZES) {
    const flops = 2 * size ** 3;
    const [a, b] = [tf.randomUniform([size, size], -1, 1, 'float32', 1), tf.randomUniform([size, size], -1, 1, 'float32', 2)];
    const matmul = () => tf.matMul(a, b);
    // 0.2 ms calls: more samples, after enough calls for V8 to have optimised the tfjs path around the kernel
    const nativeMs = timeOnBackend('native', matmul, { runs: 25, warmup: 20 }).medianMs;
    let cpuCell = 'skipped';
    let ratio = '';
    if (RUN_CPU && (cpuRate === null || flops / (cpuRate * 1e6) <= CPU_BUDGET_MS)) {
      const cpuMs = timeOnBackend('cpu', matmul, { runs: 3, warmup: 0, budgetMs: CPU_BUDGET_MS }).medianMs;
      cpuRate = flops / cpuMs / 1e6;
      cpuCell = cpuRate;
      ratio = `${(cpuMs / nativeMs).toFixed(0)}x`;
    } else if (RUN_CPU) {
      cpuCell = `skipped (est. ${(flops / (cpuRate * 1e9)).toFixed(0)} s)`;
    }
    gemmRows.push([`${size}`, nativeMs, flops / nativeMs / 1e6, cpuCell, ratio]);
    tf.dispose([a, b]);
  }
  const numpyRates = RUN_TORCH ? numpySgemm(GEMM_SIZES) : null;
  if (numpyRates) gemmRows.forEach((row, i) => row.push(numpyRates[i], `${((100 * row[2]) / numpyRates[i]).toFixed(0)}%`));
  printTable('(a) GEMM [n,n]x[n,n], float32', ['n', 'native ms', 'native GFLOP/s', 'cpu GFLOP/s', 'native speedup', ...(numpyRates ? ['numpy GFLOP/s', 'native/numpy'] : [])], gemmRows);

  // (b) 3x3 'same' convolutions: native and tfjs cpu, then cpu with registerFastCpuKernels()
  // (the TypeScript im2col + GEMM kernels, what a machine without a compiler gets).
  const convRows = [];
  const cpuRows = new Map();
  const measureCpu = (label) => {
    const rates = {};
    for (const shape of CONV_SHAPES) {
      const inputs = convInputs(shape);
      for (const pass of PASSES) {
        const flops = convFlops(shape);
        const key = `${shape}/${pass}`;
        const rate = rates[pass];
        let cells;
        if (!RUN_CPU) {
          cells = ['off', ''];
        } else if (rate !== undefined && flops / (rate * 1e6) > CPU_BUDGET_MS) {
          cells = [`skipped (est. ${(flops / (rate * 1e9)).toFixed(0)} s)`, ''];
        } else {
          const ms = timeOnBackend('cpu', convPass(pass, inputs), { runs: 3, warmup: 0, budgetMs: CPU_BUDGET_MS }).medianMs;
          rates[pass] = flops / ms / 1e6;
          cells = [ms, rates[pass]];
        }
        cpuRows.set(key, [...(cpuRows.get(key) ?? []), ...cells]);
      }
      tf.dispose(Object.values(inputs));
    }
    return label;
  };
  // Each pass also with im2col + GEMM forced (the algorithm before Winograd), interleaved so both see
  // the same machine load; ROUNDS rounds over all shapes.
  const algorithm = addon.convAlgorithm();
  const roundsMs = new Map(); // `${shape}/${pass}` -> { auto: [ms per round], im2col: [...] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const shape of CONV_SHAPES) {
      const inputs = convInputs(shape);
      for (const pass of PASSES) {
        const key = `${shape}/${pass}`;
        if (!roundsMs.has(key)) roundsMs.set(key, { auto: [], im2col: [] });
        roundsMs.get(key).auto.push(timeOnBackend('native', convPass(pass, inputs), { runs: 7 }).medianMs);
        addon.setConvAlgorithm('im2col');
        roundsMs.get(key).im2col.push(timeOnBackend('native', convPass(pass, inputs), { runs: 7 }).medianMs);
        addon.setConvAlgorithm(algorithm);
      }
      tf.dispose(Object.values(inputs));
    }
  }
  for (const shape of CONV_SHAPES) {
    for (const pass of PASSES) {
      const { auto, im2col } = roundsMs.get(`${shape}/${pass}`);
      const ms = median(auto), im2colMs = median(im2col);
      convRows.push([`[${shape.slice(0, 4)}]->${shape[4]}`, pass, ms, convFlops(shape) / ms / 1e6, im2colMs, `${(im2colMs / ms).toFixed(2)}x`]);
    }
  }
  measureCpu('tfjs cpu');
  registerFastCpuKernels();
  measureCpu('cpu + TS kernels');
  const rows = convRows.map((row, i) => {
    const shape = CONV_SHAPES[Math.floor(i / PASSES.length)];
    const cells = cpuRows.get(`${shape}/${row[1]}`);
    const speedup = typeof cells[0] === 'number' ? `${(cells[0] / row[2]).toFixed(0)}x` : '';
    return [...row, ...cells, speedup];
  });
  printTable(
    `(b) conv2d 3x3 'same', stride 1, NHWC, median ms (native: median of ${ROUNDS} rounds of 7 runs), GFLOP/s of the direct convolution (native im2col = im2col + GEMM forced; cpu+TS = cpu backend after registerFastCpuKernels())`,
    ['x -> out channels', 'pass', 'native ms', 'native GFLOP/s', 'native im2col ms', 'im2col / native', 'cpu ms', 'cpu GFLOP/s', 'cpu+TS ms', 'cpu+TS GFLOP/s', 'native vs cpu'],
    rows,
  );

  // 1 thread too: a per-core comparison that other processes on the machine disturb least
  if (RUN_TORCH) for (const threads of new Set([1, addon.numThreads()])) if (!printTorch(threads)) break;
}

/** numpy's sgemm GFLOP/s (its BLAS, all threads) for each size, median of 7, or null without numpy. */
function numpySgemm(sizes) {
  const script = `
import time, numpy as np
def median(xs):
    xs = sorted(xs); return xs[len(xs) // 2]
for n in ${JSON.stringify(sizes)}:
    a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32); a @ b
    ts = []
    for _ in range(7):
        t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)
    print(2 * n ** 3 / median(ts) / 1e9)
`;
  const result = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim().split('\n').map(Number) : null;
}

/** PyTorch's numbers for the same convolutions, when /usr/bin/python3 has torch. */
function printTorch(threads) {
  const script = `
import sys, time, torch
torch.set_num_threads(${threads})
shapes = ${JSON.stringify(CONV_SHAPES)}
def median(xs):
    xs = sorted(xs); return xs[len(xs) // 2]
rounds = {}
for _ in range(${ROUNDS}):
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
            rounds.setdefault((n, h, w, cin, cout, name), []).append(median(ts))
for (n, h, w, cin, cout, name), per_round in rounds.items():
    ms = median(per_round); print(f"[{n},{h},{w},{cin}]->{cout}\\t{name}\\t{ms:.3f}\\t{2*n*h*w*cin*cout*9/ms/1e6:.1f}")
`;
  const result = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' });
  if (result.status !== 0) {
    console.log('\n(c) PyTorch: skipped (python3-torch is not installed for /usr/bin/python3)');
    return false;
  }
  const rows = result.stdout.trim().split('\n').map((line) => line.split('\t')).map(([shape, pass, ms, rate]) => [shape, pass, Number(ms), Number(rate)]);
  printTable(`(c) PyTorch ${threads} thread(s), same convolutions (NCHW), median of ${ROUNDS} rounds of 7 runs`, ['x -> out channels', 'pass', 'torch ms', 'torch GFLOP/s'], rows);
  return true;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
