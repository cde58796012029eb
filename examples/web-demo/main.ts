// The web demo's page script (bundled by build.js with esbuild): loads the exported model, segments the
// bundled sample image (or one dropped or picked), and shows the overlay, a legend with each class's pixel
// share, the inference time and the backend. `?backend=webgl|wasm|cpu|webgpu` forces a backend; the last
// result is on `window.segkitDemo` for the browser test.
import * as tf from '@tensorflow/tfjs-core';
import { classShares, loadSegmentor, overlayImage, type WebBackend, type WebSegmentation, type WebSegmentor } from '@segkit/web';

interface DemoState {
  ready: Promise<void>;
  error?: string;
  /** bench/web-inference.js: milliseconds of `runs` whole-image inferences (labels read back) at height×width, after one warm-up. */
  benchmark?: (height: number, width: number, runs: number) => Promise<number[]>;
  result?: { backend: string; milliseconds: number; shape: number[]; labels: number[]; logits?: number[] };
}

const state: DemoState = { ready: Promise.resolve() };
(window as unknown as { segkitDemo: DemoState }).segkitDemo = state;

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

async function pixelsOf(source: Blob): Promise<ImageData> {
  // No colour-space conversion or premultiplication: the page sees the file's pixels, as Node decodes them.
  const bitmap = await createImageBitmap(source, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = element<HTMLCanvasElement>('image');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  context.drawImage(bitmap, 0, 0);
  return context.getImageData(0, 0, bitmap.width, bitmap.height);
}

function show(segmentor: WebSegmentor, image: ImageData, result: WebSegmentation): void {
  const overlay = overlayImage(image, result.labels.data, segmentor.palette, 0.5);
  const canvas = element<HTMLCanvasElement>('overlay');
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d')!.putImageData(new ImageData(overlay.data, overlay.width, overlay.height), 0, 0);
  const shares = classShares(result.labels.data, segmentor.classes.length);
  element('legend').replaceChildren(
    ...segmentor.classes.map((name, i) => {
      const item = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = `rgb(${segmentor.palette[i]!.join(',')})`;
      item.append(swatch, `${name}: ${(shares[i]! * 100).toFixed(1)} %`);
      return item;
    }),
  );
  element('status').textContent = `${image.width}×${image.height} in ${result.milliseconds.toFixed(1)} ms on ${result.backend}`;
}

async function segment(segmentor: WebSegmentor, source: Blob): Promise<void> {
  const image = await pixelsOf(source);
  const result = await segmentor.segment(image, { logits: true });
  show(segmentor, image, result);
  state.result = {
    backend: result.backend,
    milliseconds: result.milliseconds,
    shape: [...result.labels.shape],
    labels: Array.from(result.labels.data),
    logits: result.logits ? Array.from(result.logits.data) : undefined,
  };
}

function fail(error: unknown): void {
  state.error = (error as Error).message ?? String(error);
  const box = element('model');
  box.className = 'error';
  box.textContent = state.error;
}

async function main(): Promise<void> {
  // `?tfjs-flag=NAME:value` sets a tfjs flag first (e.g. WEBGL_PACK:false), for experiments.
  for (const flag of new URLSearchParams(location.search).getAll('tfjs-flag')) {
    const [name, value] = flag.split(':');
    tf.env().set(name!, value === 'true' ? true : value === 'false' ? false : Number(value));
  }
  const params = new URLSearchParams(location.search);
  const backend = (params.get('backend') ?? 'auto') as WebBackend | 'auto';
  const segmentor = await loadSegmentor(new URL(params.get('model') ?? 'model/model.json', location.href).href, { backend, wasmPath: new URL('wasm/', location.href).href });
  const skipped = segmentor.backend.skipped.map((s) => `${s.name} (${s.reason})`).join(', ');
  element('model').textContent = `model: ${String(segmentor.metadata.model.type ?? 'EncoderDecoder')} with ${segmentor.classes.length} classes, ${segmentor.metadata.testCfg.mode ?? 'whole'} inference; backend ${segmentor.backend.name}${skipped ? `; skipped ${skipped}` : ''}`;
  state.benchmark = async (height, width, runs) => {
    const image = tf.randomUniform([1, height, width, 3], -1, 1, 'float32', 0) as tf.Tensor4D;
    const times: number[] = [];
    try {
      for (let run = 0; run <= runs; run++) {
        const started = performance.now();
        const labels = tf.tidy(() => segmentor.model.labelsFromLogits(segmentor.model.inference(image, { mode: 'whole' })));
        await labels.data();
        labels.dispose();
        if (run > 0) times.push(performance.now() - started);
      }
    } finally {
      image.dispose();
    }
    return times;
  };
  // `?sample=none` skips the sample image (the benchmark's big models).
  if (params.get('sample') !== 'none') await segment(segmentor, await (await fetch('sample.png')).blob());
  else state.result = { backend: segmentor.backend.name, milliseconds: 0, shape: [], labels: [] };
  const drop = element('drop');
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer?.files[0];
    if (file) segment(segmentor, file).catch(fail);
  });
  element<HTMLInputElement>('file').addEventListener('change', (event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (file) segment(segmentor, file).catch(fail);
  });
}

state.ready = main().catch(fail);
