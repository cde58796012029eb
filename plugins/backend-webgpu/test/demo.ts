// Shared by this plugin's tests: the WebGPU device (or what to install), and for the tests that train the
// demo config on webgpu against native, the model, its state as host values and the decode head's OHEM maps.
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import type { DecodeHead, Kernel, LoadedConfig, PixelSampler, Segmentor } from '@segkit/core';
import { webGpuBackendProvider } from '../src';

export const DEMO_CONFIG = path.resolve(__dirname, '../../../../configs/demo/unet-s5-d16_tricks_64x64_synthetic-drive.ts');
export const quiet = { info: () => undefined, warn: () => undefined };

const INSTALL =
  'no WebGPU device: install a Vulkan driver and libvulkan1 (CI: `bash .ci/apt-webgpu.sh` installs Mesa 25 lavapipe from bookworm-backports; a GPU machine: the vendor driver)';

/** Loads the webgpu backend (asked for by name, so lavapipe counts) or fails saying what to install. */
export async function loadWebGpuOrExplain(): Promise<void> {
  const reason = await webGpuBackendProvider.load({ byName: true });
  if (reason !== null) throw new Error(`${INSTALL}: ${reason}`);
  const previous = tf.getBackend();
  if (!(await tf.setBackend('webgpu'))) throw new Error(`${INSTALL}: tf.setBackend('webgpu') resolved to false`);
  await tf.setBackend(previous);
}

/** A tensor's values and shape on the host: what moves state from one backend to the other. */
export interface HostTensor {
  values: Float32Array | Int32Array;
  shape: number[];
  dtype: tf.DataType;
}

/** Reads tensors asynchronously (the only readback webgpu allows) into host copies, by name. */
export async function readTensors(tensors: Iterable<readonly [string, tf.Tensor]>): Promise<Map<string, HostTensor>> {
  const entries = [...tensors];
  const values = await Promise.all(entries.map(([, t]) => t.data()));
  return new Map(entries.map(([name, t], i) => [name, { values: (t.dtype === 'int32' ? Int32Array : Float32Array).from(values[i] as ArrayLike<number>), shape: [...t.shape], dtype: t.dtype }]));
}

export function toTensor(host: HostTensor): tf.Tensor {
  return tf.tensor(host.values, host.shape, host.dtype);
}

export type DemoSegmentor = Segmentor & { decodeHead: DecodeHead & { sampler: PixelSampler } };

/** The demo config's model on the active backend, in training mode, with `state` (weights and BatchNorm buffers) assigned. */
export function buildDemoModel(kernel: Kernel, config: LoadedConfig, state: ReadonlyMap<string, HostTensor>): DemoSegmentor {
  const model = kernel.build('segmentors', config.model as never, { path: 'model' }) as DemoSegmentor;
  model.train();
  for (const [name, variable] of model.stateDict()) tf.tidy(() => variable.assign(toTensor(state.get(name)!)));
  return model;
}

/** What the decode head's OHEM sampler saw and chose in one forward pass. */
export interface OhemRecord {
  /** The weight map (1 kept, 0 dropped), [N,H,W]. */
  map: tf.Tensor;
  /** Each pixel's softmax probability of its ground-truth class, [N,H,W]: what probability mode ranks. */
  probabilities: tf.Tensor;
}

/**
 * Keeps a copy of what the decode head's OHEM sampler saw and chose in each forward pass; `take()`
 * hands over (the caller disposes) the last one.
 */
export function recordOhemMaps(model: DemoSegmentor): { take(): OhemRecord } {
  const sampler = model.decodeHead.sampler;
  const sample = sampler.sample.bind(sampler);
  let last: OhemRecord | null = null;
  sampler.sample = (logits, labels, context) => {
    const map = sample(logits, labels, context);
    if (last) tf.dispose([last.map, last.probabilities]);
    const probabilities = tf.tidy(() => {
      const classes = logits.shape[3]!;
      const safeLabels = tf.where(tf.equal(labels, context.ignoreIndex), tf.zerosLike(labels), labels);
      return tf.sum(tf.mul(tf.softmax(logits), tf.oneHot(tf.cast(safeLabels, 'int32'), classes)), -1);
    });
    last = { map: tf.keep(tf.clone(map)), probabilities: tf.keep(probabilities) };
    return map;
  };
  return {
    take() {
      if (!last) throw new Error('the OHEM sampler did not run');
      const record = last;
      last = null;
      return record;
    },
  };
}
