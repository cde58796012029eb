#!/usr/bin/env node
// `npm run bench`: the benchmark suite in sequence (each script in its own process, output passed
// through): native backend kernels, model forward passes, data loader, training iteration.
'use strict';
const path = require('path');
const { spawnSync } = require('child_process');

const SCRIPTS = ['backend-native.js', 'forward.js', 'data-loader.js', 'train-step.js'];

let failed = 0;
for (const script of SCRIPTS) {
  console.log(`\n=== bench/${script} ===`);
  const result = spawnSync(process.execPath, [path.join(__dirname, script)], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed += 1;
    console.log(`bench/${script} failed (exit ${result.status ?? result.signal})`);
  }
}
process.exit(failed ? 1 : 0);
