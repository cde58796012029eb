#!/usr/bin/env node
// `npm run web-demo`: exports the demo model (`npm run demo`'s work_dirs/demo/latest.safetensors, or
// --checkpoint FILE) to TF.js, builds examples/web-demo with esbuild into work_dirs/web-demo/ and serves it
// on 127.0.0.1 (--port N, default 8080; 0 = any free port) until Ctrl-C.
const fs = require('fs');
const path = require('path');
const { buildWebDemo, DEMO_CHECKPOINT, DEMO_CONFIG } = require('../examples/web-demo/build');
const { serveStatic } = require('../examples/web-demo/serve');

function option(name, fallback) {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

async function main() {
  const checkpoint = path.resolve(option('--checkpoint', DEMO_CHECKPOINT));
  if (!fs.existsSync(checkpoint)) {
    console.error(`web-demo: no checkpoint at ${checkpoint}: run \`npm run demo\` first (it trains the demo UNet in a few minutes), or pass --checkpoint FILE`);
    process.exit(1);
  }
  const port = Number(option('--port', '8080'));
  const outDir = path.resolve(__dirname, '..', 'work_dirs', 'web-demo');
  const built = await buildWebDemo({ checkpoint, outDir, logger: { info: () => undefined, warn: () => undefined } });
  const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
  for (const { file, bytes, gzip } of [...built.page, ...built.model]) console.log(`  ${file.padEnd(28)} ${kb(bytes).padStart(9)}  (gzip ${kb(gzip)})`);
  const server = await serveStatic(outDir, { port });
  console.log(`\nweb demo of ${path.relative(process.cwd(), checkpoint)}: open ${server.url}  (Ctrl-C stops it)`);
}

main().catch((error) => {
  console.error(`web-demo: ${error.message}`);
  process.exit(1);
});
