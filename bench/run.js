#!/usr/bin/env node
// `npm run bench`: the benchmark suite in sequence (each script in its own process, output passed
// through): native backend kernels, model forward passes, data loader, training iteration, inference
// and memory beside PyTorch; then one summary line per model (native/PyTorch ratios, ISA, threads, load).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { RESULTS_ENV, printSummary } = require('./summary');

const SCRIPTS = ['backend-native.js', 'forward.js', 'data-loader.js', 'train-step.js', 'inference.js', 'memory.js'];
const resultsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-bench-')), 'results.jsonl');
process.env[RESULTS_ENV] = resultsFile;

let failed = 0;
for (const script of SCRIPTS) {
  console.log(`\n=== bench/${script} ===`);
  const result = spawnSync(process.execPath, [path.join(__dirname, script)], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed += 1;
    console.log(`bench/${script} failed (exit ${result.status ?? result.signal})`);
  }
}
printSummary(resultsFile, nativeSetup());
fs.rmSync(path.dirname(resultsFile), { recursive: true, force: true });
process.exit(failed ? 1 : 0);

/** The ISA the native addon chose here and its thread count (for the summary). */
function nativeSetup() {
  try {
    const { loadAddon } = require('../plugins/backend-cpu-native');
    const { addon, reason } = loadAddon();
    return addon ? { isa: addon.microKernel(), threads: addon.numThreads() } : { isa: `none (${reason})`, threads: '-' };
  } catch (error) {
    return { isa: `unknown (${error instanceof Error ? error.message : error})`, threads: '-' };
  }
}
