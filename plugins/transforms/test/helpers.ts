import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createKernel, type Kernel, type NdArray, type PipelineResults, type RandomSource, type Transform } from '@segkit/core';
import { plugin } from '../src';

const silent = { info: () => undefined, warn: () => undefined };
let kernel: Kernel | undefined;

export async function transformsKernel(): Promise<Kernel> {
  kernel ??= await createKernel({ plugins: [plugin], backend: 'cpu', logger: silent });
  return kernel;
}

export async function build(cfg: Record<string, unknown>): Promise<Transform> {
  return (await transformsKernel()).build('transforms', cfg, { path: 'pipeline.0' });
}

/** A random source that returns the given values in order and counts how many were taken. */
export function scripted(values: number[]): RandomSource & { taken: number } {
  const source = {
    taken: 0,
    random() {
      if (source.taken >= values.length) throw new Error(`scripted random source exhausted after ${values.length} draws`);
      return values[source.taken++]!;
    },
  };
  return source;
}

export const noRandom: RandomSource = {
  random() {
    throw new Error('this transform must not draw random numbers here');
  },
};

export function image(height: number, width: number, fill: (y: number, x: number, c: number) => number): NdArray<Uint8Array> {
  const data = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = fill(y, x, c);
  return { data, shape: [height, width, 3] };
}

export function labels(rows: number[][]): NdArray<Uint8Array> {
  return { data: Uint8Array.from(rows.flat()), shape: [rows.length, rows[0]!.length] };
}

export function rowsOf(array: NdArray): number[][] {
  const [h, w] = array.shape as [number, number];
  return Array.from({ length: h }, (_, y) => Array.from(array.data.subarray(y * w, (y + 1) * w)));
}

export function withSeg(img: NdArray, seg?: NdArray): PipelineResults {
  return { img, img_shape: [...img.shape], ...(seg ? { gt_semantic_seg: seg, seg_fields: ['gt_semantic_seg'] } : { seg_fields: [] }) };
}

const tempDirs: string[] = [];

/** A fresh temporary folder, removed after the test run. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-transforms-'));
  tempDirs.push(dir);
  return dir;
}

after(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

export async function errorOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected an error');
}
