// Machine-readable results for `npm run bench`'s closing summary: each bench script records its
// measurements (recordResult) into the JSON-lines file named by SEGKIT_BENCH_RESULTS (set by run.js;
// unset: nothing is recorded), and run.js prints one line per model from them (printSummary).
'use strict';
const fs = require('fs');
const os = require('os');

const RESULTS_ENV = 'SEGKIT_BENCH_RESULTS';

/**
 * Records one measurement: model key, measure ('train', 'inference', 'memory'), side ('native', 'torch'), value;
 * `note` (optional) is printed beside the measure's ratio in the summary (e.g. the slide window batch size).
 */
function recordResult(model, measure, side, value, unit, note) {
  const file = process.env[RESULTS_ENV];
  if (!file || value == null) return;
  fs.appendFileSync(file, `${JSON.stringify({ model, measure, side, value, unit, ...(note ? { note } : {}) })}\n`);
}

function readResults(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

/**
 * One line per model: native/PyTorch ratio of each measure (below 1 is faster / smaller), then the
 * ISA, thread count and load average, so runs on different machines compare at a glance.
 */
function printSummary(file, { isa, threads }) {
  const results = readResults(file);
  const models = [...new Set(results.map((r) => r.model))];
  const value = (model, measure, side) => results.filter((r) => r.model === model && r.measure === measure && r.side === side).map((r) => r.value).pop();
  const ratio = (model, measure) => {
    const [a, b] = [value(model, measure, 'native'), value(model, measure, 'torch')];
    const note = results.filter((r) => r.model === model && r.measure === measure && r.note).map((r) => r.note).pop();
    return `${a == null || b == null ? '-' : `${(a / b).toFixed(2)}x`}${note ? ` (${note})` : ''}`;
  };
  console.log('\n=== summary: native / PyTorch (below 1.00x: native faster or smaller) ===');
  for (const model of models) {
    console.log(`${model}: train ${ratio(model, 'train')}, inference ${ratio(model, 'inference')}, memory ${ratio(model, 'memory')}; ISA ${isa}, ${threads} thread(s), load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  }
}

module.exports = { RESULTS_ENV, recordResult, printSummary };
