// The web demo in a real browser: Debian's Chromium (headless, driven by playwright-core, nothing downloaded)
// opens examples/web-demo built around the demo UNet exported to TF.js, segments the sample image on webgl
// (SwiftShader, a CPU emulation of a GPU) and on wasm, and the label map and logits must equal Node's
// inferenceSegmentor on the same file. Screenshots land in work_dirs/test-output/web-demo-browser/.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { inferenceSegmentor, initSegmentor, type InferenceResult, type SegmentorHandle } from '@segkit/core';

const root = path.resolve(__dirname, '..', '..');

interface DemoBuild {
  buildWebDemo(options: { handle: SegmentorHandle; outDir: string }): Promise<{ outDir: string }>;
  DEMO_CONFIG: string;
  SAMPLE_IMAGE: string;
}
interface StaticServer {
  url: string;
  close(): Promise<void>;
}
interface PageResult {
  backend: string;
  milliseconds: number;
  shape: number[];
  labels: number[];
  logits?: number[];
}

const { buildWebDemo, DEMO_CONFIG, SAMPLE_IMAGE } = require(path.join(root, 'examples', 'web-demo', 'build.js')) as DemoBuild;
const { CHROMIUM, CHROMIUM_ARGS, INSTALL_HINT } = require(path.join(root, 'examples', 'web-demo', 'chromium.js')) as { CHROMIUM: string; CHROMIUM_ARGS: string[]; INSTALL_HINT: string };
const { serveStatic } = require(path.join(root, 'examples', 'web-demo', 'serve.js')) as { serveStatic(dir: string): Promise<StaticServer> };

describe('web demo in Chromium (webgl and wasm equal Node)', function () {
  this.timeout(300_000);
  const outDir = path.join(root, 'work_dirs', 'test-output', 'web-demo-browser');
  let handle: SegmentorHandle;
  let reference: InferenceResult;
  let server: StaticServer;
  let context: import('playwright-core').BrowserContext;

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: ${INSTALL_HINT}`);
    const tensorsBefore = tf.memory().numTensors;
    // The demo UNet with its seeded initial weights: the test needs no training run and no dataset folder.
    // Node's reference on segkit's native backend (what `auto` picks); after() goes back to cpu.
    handle = await initSegmentor(DEMO_CONFIG, undefined, { backend: 'native', logger: { info: () => undefined, warn: () => undefined } });
    reference = await inferenceSegmentor(handle, SAMPLE_IMAGE, { logits: true });
    await buildWebDemo({ handle, outDir: path.join(outDir, 'site') });
    handle.dispose();
    expect(tf.memory().numTensors, 'tensors left by export and inference').to.equal(tensorsBefore);
    server = await serveStatic(path.join(outDir, 'site'));
    const { chromium } = await import('playwright-core');
    const profile = fs.mkdtempSync(path.join(outDir, 'profile-'));
    try {
      context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
    } catch (error) {
      throw new Error(`Chromium (${CHROMIUM}) did not start: ${(error as Error).message.split('\n')[0]}; ${INSTALL_HINT}`);
    }
  });

  after(async () => {
    await context?.close();
    await server?.close();
    await tf.setBackend('cpu');
    for (const entry of fs.existsSync(outDir) ? fs.readdirSync(outDir) : []) {
      if (entry.startsWith('profile-')) fs.rmSync(path.join(outDir, entry), { recursive: true, force: true });
    }
  });

  for (const backend of ['webgl', 'wasm'] as const) {
    it(`segments the sample image on ${backend} like inferenceSegmentor (labels >= 99.9 %, logits within 1e-3)`, async () => {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${server.url}?backend=${backend}`);
      await page.waitForFunction(() => {
        const demo = (globalThis as unknown as { segkitDemo?: { result?: unknown; error?: string } }).segkitDemo;
        return demo?.result !== undefined || demo?.error !== undefined;
      }, null, { timeout: 240_000 });
      const { result, error } = await page.evaluate(() => {
        const demo = (globalThis as unknown as { segkitDemo: { result?: PageResult; error?: string } }).segkitDemo;
        return { result: demo.result, error: demo.error };
      });
      await page.screenshot({ path: path.join(outDir, `web-demo-${backend}.png`), fullPage: true });
      const status = await page.textContent('#status');
      await page.close();
      expect(error, 'page error').to.equal(undefined);
      expect(errors, 'uncaught page errors').to.deep.equal([]);
      expect(result!.backend).to.equal(backend);
      expect(status).to.match(new RegExp(`^128×128 in [0-9.]+ ms on ${backend}$`));
      expect(result!.shape).to.deep.equal([...reference.labels.shape]);
      let same = 0;
      for (let i = 0; i < reference.labels.data.length; i++) if (result!.labels[i] === reference.labels.data[i]) same++;
      expect(same / reference.labels.data.length, 'share of pixels with Node’s label').to.be.at.least(0.999);
      const logits = result!.logits!;
      expect(logits.length).to.equal(reference.logits!.data.length);
      let worst = 0;
      for (let i = 0; i < logits.length; i++) worst = Math.max(worst, Math.abs(logits[i]! - reference.logits!.data[i]!) / Math.max(1, Math.abs(reference.logits!.data[i]!)));
      expect(worst, 'largest logit difference (relative above 1)').to.be.at.most(1e-3);
      // Both classes occur, so equal label maps are not a constant image.
      expect(new Set(result!.labels).size).to.equal(2);
    });
  }
});
