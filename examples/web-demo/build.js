// Builds the web demo into a folder: the model exported to TF.js (model/), the wasm backend's binaries
// (wasm/), the sample image, the page and its script bundled by esbuild (app.js). Used by
// `npm run web-demo`, the browser test and bench/web-inference.js.
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const here = __dirname;
const root = path.resolve(here, '..', '..');

/** The demo config, the default checkpoint (`npm run demo`'s) and the sample image. */
const DEMO_CONFIG = path.join(root, 'configs', 'demo', 'unet-s5-d16_tricks_64x64_synthetic-drive.ts');
const DEMO_CHECKPOINT = path.join(root, 'work_dirs', 'demo', 'latest.safetensors');
const SAMPLE_IMAGE = path.join(here, 'sample.png');

/** Bundles the page script for browsers; returns the minified bytes. */
async function bundlePage(outFile) {
  const esbuild = require('esbuild');
  const result = await esbuild.build({
    entryPoints: [path.join(here, 'main.ts')],
    outfile: outFile,
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  return result;
}

/**
 * Exports `handle`, or `config` + `checkpoint` (random, seeded weights without one), to `outDir`/model and builds the page.
 * Returns the folder, and the page's size: every file the page fetches, raw and gzipped.
 */
async function buildWebDemo({ config = DEMO_CONFIG, checkpoint, handle, outDir, backend = 'cpu', logger } = {}) {
  const { initSegmentor, exportTfjs } = require('@segkit/core');
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  // A caller's handle (an initSegmentor result) is exported as is and left open.
  const own = handle ? undefined : await initSegmentor(config, checkpoint, { backend, logger });
  let exported;
  try {
    exported = await exportTfjs(handle ?? own, path.join(outDir, 'model'), { output: 'logits', bakeNormalization: true });
  } finally {
    own?.dispose();
  }
  const wasmDir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  fs.mkdirSync(path.join(outDir, 'wasm'));
  for (const file of fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) fs.copyFileSync(path.join(wasmDir, file), path.join(outDir, 'wasm', file));
  fs.copyFileSync(SAMPLE_IMAGE, path.join(outDir, 'sample.png'));
  fs.copyFileSync(path.join(here, 'index.html'), path.join(outDir, 'index.html'));
  await bundlePage(path.join(outDir, 'app.js'));
  const sizeOf = (file) => {
    const bytes = fs.readFileSync(path.join(outDir, file));
    return { file, bytes: bytes.length, gzip: zlib.gzipSync(bytes, { level: 9 }).length };
  };
  // What a browser fetches for the page itself (the model and the one wasm binary it picks are listed apart).
  const page = ['index.html', 'app.js'].map(sizeOf);
  const model = exported.files.map((file) => sizeOf(path.relative(outDir, file)));
  const wasm = fs.readdirSync(path.join(outDir, 'wasm')).map((file) => sizeOf(path.join('wasm', file)));
  return { outDir, page, model, wasm };
}

module.exports = { buildWebDemo, bundlePage, DEMO_CONFIG, DEMO_CHECKPOINT, SAMPLE_IMAGE };
