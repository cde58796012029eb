#!/usr/bin/env node
// Data-loader throughput: the DRIVE training pipeline (LoadImage → LoadAnnotations → Resize(ratio 0.5–2) →
// RandomCrop 64×64 (cat_max_ratio 0.75) → RandomFlip → PhotoMetricDistortion → Normalize → Pad → format)
// over synthetic DRIVE data, batch 4, with 0 and 2 worker threads. Prints samples/s (median of --runs runs).
//   node bench/data-loader.js [--runs 5] [--batches 40] [--small]   (--small: only the 128×128 synthetic pipeline)
// Build first (npx tsc -b plugins/datasets).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { DataLoader, createKernel, loadConfig } = require('@segkit/core');
const { synthDrive } = require('@segkit/datasets');

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}
const runs = option('runs', 5);
const batches = option('batches', 40);
const batchSize = 4;
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const only = process.argv.includes('--small');
const allSettings = [
  { name: 'drive.ts (img_scale 584×565)', config: 'drive.ts', size: [584, 565] },
  { name: 'synthetic_drive.ts (128×128)', config: 'synthetic_drive.ts', size: [128, 128] },
];
const settings = only ? allSettings.slice(1) : allSettings;

async function main() {
  const configs = path.resolve(__dirname, '../configs/_base_/datasets');
  const rows = [];
  for (const setting of settings) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-bench-data-'));
    await synthDrive({ out: root, count: 20, size: setting.size, seed: 0 });
    const config = await loadConfig(path.join(configs, setting.config), [`data.train.dataset.data_root=${root}`]);
    const kernel = await createKernel({ plugins: config.plugins, backend: 'cpu', configDir: configs, logger: { info() {}, warn() {} } });
    for (const workers of [0, 2]) {
      const rates = [];
      const waits = [];
      const cores = [];
      for (let run = 0; run < runs; run++) {
        const loader = DataLoader.fromConfig(kernel, config.data.train, {
          batchSize, shuffle: true, dropLast: true, infinite: true, seed: run, workers, plugins: config.plugins, path: 'data.train',
        });
        try {
          for (let i = 0; i < 2; i++) await loader.next(); // warm-up: worker start-up and first decodes
          const start = performance.now();
          const cpuStart = process.cpuUsage(); // all threads of the process, workers included
          let waited = 0;
          for (let i = 0; i < batches; i++) waited += (await loader.next()).dataTime;
          const seconds = (performance.now() - start) / 1000;
          const cpu = process.cpuUsage(cpuStart);
          rates.push((batches * batchSize) / seconds);
          cores.push((cpu.user + cpu.system) / 1e6 / seconds);
          waits.push((waited / batches) * 1000);
        } finally {
          await loader.close();
        }
      }
      rows.push({ pipeline: setting.name, workers, rate: median(rates), min: Math.min(...rates), max: Math.max(...rates), wait: median(waits), cores: median(cores) });
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
  console.log(`data loader throughput: batch ${batchSize}, ${batches} batches per run, median of ${runs} runs, ${os.cpus().length} CPUs, Node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log('| pipeline | workers | samples/s (median) | min–max | data time per batch (ms, median) | CPU cores busy |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(`| ${r.pipeline} | ${r.workers} | ${r.rate.toFixed(1)} | ${r.min.toFixed(1)}–${r.max.toFixed(1)} | ${r.wait.toFixed(1)} | ${r.cores.toFixed(2)} |`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
