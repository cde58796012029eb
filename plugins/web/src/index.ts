/**
 * `@segkit/web`: segments images in a browser with a model written by `segkit export --format tfjs`. The
 * model is rebuilt by segkit's own nn modules (core's browser-safe runtime and the model plugins), so the
 * test pipeline, whole or slide inference and the label map are the code Node runs; only the tfjs backend
 * differs: webgpu, else webgl, else wasm, else cpu, by what the browser offers.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import {
  SegkitError,
  createRuntimeKernel,
  renderOverlay,
  segmentorFromTfjsArtifacts,
  type PixelImage,
  type PixelSegmentation,
  type SegkitPlugin,
  type SegkitTfjsMetadata,
  type SegmentationOutputs,
  type Segmentor,
} from '@segkit/core/runtime';
import { plugin as resnetPlugin } from '@segkit/backbone-resnet';
import { plugin as unetPlugin } from '@segkit/backbone-unet';
import { plugin as fcnPlugin } from '@segkit/head-fcn';
import { plugin as pspPlugin } from '@segkit/head-psp';
import { plugin as crossEntropyPlugin } from '@segkit/loss-cross-entropy';
import { plugin as dicePlugin } from '@segkit/loss-dice';
import { plugin as transformsPlugin } from '@segkit/transforms/runtime';

/** The plugins of the models segkit ships (PSPNet R50-D8, UNet + FCN, their losses) and the pixel transforms. */
export const DEFAULT_PLUGINS: readonly SegkitPlugin[] = [resnetPlugin, unetPlugin, fcnPlugin, pspPlugin, crossEntropyPlugin, dicePlugin, transformsPlugin];

/** The backends tried by 'auto', fastest first. */
export const BACKEND_ORDER = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type WebBackend = (typeof BACKEND_ORDER)[number];

export interface BackendChoice {
  readonly name: WebBackend;
  /** Why each faster backend was not taken. */
  readonly skipped: readonly { name: WebBackend; reason: string }[];
}

export interface BackendOptions {
  /** 'auto' (default) tries BACKEND_ORDER; a name insists on that backend (an error if it cannot start). */
  backend?: WebBackend | 'auto';
  /**
   * Where the wasm backend's `tfjs-backend-wasm*.wasm` files are served (a folder URL ending in '/'); they
   * ship in @tensorflow/tfjs-backend-wasm/dist. Without it the wasm backend is skipped.
   */
  wasmPath?: string;
}

/** Why `name` cannot start here, or null once it is the active tfjs backend. */
async function tryBackend(name: WebBackend, options: BackendOptions): Promise<string | null> {
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (name === 'webgpu' && !nav?.gpu) return 'navigator.gpu is not available';
  if (name === 'wasm') {
    if (!options.wasmPath) return 'no wasmPath given (the folder serving tfjs-backend-wasm*.wasm)';
    setWasmPaths(options.wasmPath);
  }
  try {
    if (!(await tf.setBackend(name))) return 'tfjs could not initialize it';
    await tf.ready();
    return null;
  } catch (error) {
    return (error as Error).message.split('\n')[0] ?? 'failed to start';
  }
}

/** Activates the fastest backend the browser offers (or the one asked for) and says why faster ones were skipped. */
export async function selectWebBackend(options: BackendOptions = {}): Promise<BackendChoice> {
  const requested = options.backend ?? 'auto';
  if (requested !== 'auto') {
    if (!BACKEND_ORDER.includes(requested)) throw new SegkitError(`backend: expected 'auto' or one of ${BACKEND_ORDER.join(', ')}, got '${String(requested)}'`);
    const reason = await tryBackend(requested, options);
    if (reason) throw new SegkitError(`backend: '${requested}' cannot start here: ${reason}`);
    return { name: requested, skipped: [] };
  }
  const skipped: { name: WebBackend; reason: string }[] = [];
  for (const name of BACKEND_ORDER) {
    const reason = await tryBackend(name, options);
    if (!reason) return { name, skipped };
    skipped.push({ name, reason });
  }
  throw new SegkitError(`backend: no tfjs backend could start (${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')})`);
}

export interface LoadOptions extends BackendOptions {
  /** Plugin objects for the model's types (default DEFAULT_PLUGINS); the model.json lists the packages it needs. */
  plugins?: readonly SegkitPlugin[];
}

export interface WebSegmentation extends PixelSegmentation {
  /** Milliseconds from pixels to label map (pre-processing, inference, read-back). */
  readonly milliseconds: number;
  readonly backend: WebBackend;
}

/** A loaded model in the page. */
export interface WebSegmentor {
  readonly backend: BackendChoice;
  readonly metadata: SegkitTfjsMetadata;
  readonly model: Segmentor;
  /** Class names (the checkpoint's) or `class 0`, `class 1`, ... */
  readonly classes: readonly string[];
  readonly palette: readonly (readonly [number, number, number])[];
  /** The label map of an image (RGBA `ImageData`, RGB(A) pixels or an RGB tensor [H,W,3]) at its size. */
  segment(image: PixelImage | tf.Tensor3D, outputs?: SegmentationOutputs): Promise<WebSegmentation>;
  dispose(): void;
}

/**
 * Loads `model.json` (and its weight shards beside it) from `modelUrl`, after choosing the backend. Errors
 * name the URL and what is missing.
 */
export async function loadSegmentor(modelUrl: string, options: LoadOptions = {}): Promise<WebSegmentor> {
  const backend = await selectWebBackend(options);
  const kernel = await createRuntimeKernel({ plugins: options.plugins ?? DEFAULT_PLUGINS, logger: { info: () => undefined, warn: (m) => console.warn(`segkit: ${m}`) } });
  let artifacts: tf.io.ModelArtifacts;
  try {
    // An http IOHandler always has load().
    artifacts = await tf.io.http(modelUrl).load!();
  } catch (error) {
    throw new SegkitError(`${modelUrl}: cannot load the exported model (${(error as Error).message.split('\n')[0]})`);
  }
  const loaded = segmentorFromTfjsArtifacts(artifacts, kernel, modelUrl);
  const { metadata } = loaded;
  const classes = Array.from({ length: loaded.model.numClasses }, (_, i) => metadata.classes?.[i] ?? `class ${i}`);
  return {
    backend,
    metadata,
    model: loaded.model,
    classes,
    palette: metadata.palette.map((c) => [c[0], c[1], c[2]] as const),
    async segment(image, outputs) {
      const started = performance.now();
      const result = await loaded.segment(image, outputs);
      return { ...result, milliseconds: performance.now() - started, backend: backend.name };
    },
    dispose: () => loaded.dispose(),
  };
}

/** RGBA pixels (for a canvas) of the palette colours blended over the image: MMSegmentation's `show_result`. */
export function overlayImage(image: PixelImage, labels: Int32Array, palette: readonly (readonly number[])[], opacity = 0.5): { data: Uint8ClampedArray; width: number; height: number } {
  const { width, height } = image;
  const channels = image.data.length / (width * height);
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = image.data[p * channels + c]!;
  const blended = renderOverlay({ data: rgb, shape: [height, width, 3] }, labels, palette, opacity).data;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    rgba.set(blended.subarray(p * 3, p * 3 + 3), p * 4);
    rgba[p * 4 + 3] = 255;
  }
  return { data: rgba, width, height };
}

/** The share of pixels (0..1) of each class 0..numClasses-1 in a label map. */
export function classShares(labels: Int32Array, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const label of labels) if (label >= 0 && label < numClasses) counts[label]! += 1;
  return counts.map((count) => (labels.length ? count / labels.length : 0));
}
