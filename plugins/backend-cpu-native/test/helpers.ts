import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { nn } from '@segkit/core';
import { loadAddon } from '../src/addon';
import type { NativeAddon } from '../src/engine';
import { registerNativeBackend } from '../src/native-backend';

/** Deterministic PRNG (mulberry32), so a failing random case can be reproduced. */
export function makeRandom(seed: number): { next(): number; int(lo: number, hi: number): number; pick<T>(items: readonly T[]): T } {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), pick: (items) => items[Math.floor(next() * items.length)] };
}

export function randomValues(random: { next(): number }, shape: readonly number[]): Float32Array {
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random.next() * 2 - 1);
}

/** The addon (tests require it: the package's install step builds it). */
export function requireAddon(): NativeAddon {
  nn.ensureGradientsRegistered(); // tfjs-core's CommonJS build ships no gradients
  const result = loadAddon();
  if (!result.addon) throw new Error(result.reason);
  registerNativeBackend(result.addon);
  return result.addon;
}

/** Runs fn with `backend` active and returns copies of its output tensors' values; no tensor survives. */
export function runOn(backend: string, fn: () => tf.Tensor | tf.Tensor[]): Float32Array[] {
  const previous = tf.getBackend();
  void tf.setBackend(backend); // synchronous for cpu-like backends
  try {
    const outputs = tf.tidy(() => [fn()].flat());
    const values = outputs.map((t) => Float32Array.from(t.dataSync()));
    tf.dispose(outputs);
    return values;
  } finally {
    void tf.setBackend(previous);
  }
}

/** max |actual - expected| <= tolerance * max |expected| (relative to the tensor's scale). */
export function expectClose(actual: Float32Array, expected: Float32Array, label: string, tolerance = 1e-4): void {
  expect(actual.length, `${label}: length`).to.equal(expected.length);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    if (Object.is(actual[i], expected[i])) continue; // also equal infinities and NaNs
    if (!Number.isFinite(expected[i])) expect.fail(`${label}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
    scale = Math.max(scale, Math.abs(expected[i]));
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  if (!(worst <= tolerance * Math.max(scale, 1e-6))) {
    expect.fail(`${label}: max abs error ${worst} exceeds ${tolerance} x scale ${scale}`);
  }
}

/** Compares every output of fn on `backend` against the `cpu` backend. */
export function expectSameAsCpu(backend: string, label: string, fn: () => tf.Tensor | tf.Tensor[], tolerance = 1e-4): void {
  const expected = runOn('cpu', fn);
  const actual = runOn(backend, fn);
  expect(actual.length).to.equal(expected.length);
  actual.forEach((values, i) => expectClose(values, expected[i], `${label} [output ${i}]`, tolerance));
}

/** Registers mocha hooks asserting that each test leaves tf.memory().numTensors unchanged. */
export function checkNoTensorLeaks(): void {
  let before = 0;
  beforeEach(() => {
    before = tf.memory().numTensors;
  });
  afterEach(function () {
    if (this.currentTest?.state === 'passed') expect(tf.memory().numTensors, 'tensors leaked').to.equal(before);
  });
}

export type Padding = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

export interface ConvCase {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outC: number;
  kH: number;
  kW: number;
  strides: [number, number];
  dilations: [number, number];
  pad: Padding;
  label: string;
}

/**
 * A random small convolution: odd sizes, strides or dilations (tfjs allows only one of them > 1),
 * same / valid / explicit padding. `gradients` keeps dilations at 1 (tfjs has no dilated conv grads).
 */
export function randomConvCase(random: ReturnType<typeof makeRandom>, options: { gradients?: boolean; channelMultiplier?: boolean } = {}): ConvCase {
  const kH = random.int(1, 3), kW = random.pick([1, 2, 3, 5]);
  const dilated = !options.gradients && random.next() < 0.3;
  const strides: [number, number] = dilated ? [1, 1] : [random.int(1, 3), random.int(1, 2)];
  const dilations: [number, number] = dilated ? [random.int(1, 2), random.int(2, 3)] : [1, 1];
  const effH = (kH - 1) * dilations[0] + 1, effW = (kW - 1) * dilations[1] + 1;
  const inH = random.int(effH, effH + 7), inW = random.int(effW, effW + 8);
  const padKind = random.pick(['same', 'valid', 'explicit'] as const);
  const pad: Padding = padKind === 'explicit' ? [[0, 0], [random.int(0, 2), random.int(0, 2)], [random.int(0, 2), random.int(0, 2)], [0, 0]] : padKind;
  const c: ConvCase = { batch: random.int(1, 3), inH, inW, inC: random.int(1, 7), outC: random.int(1, 9), kH, kW, strides, dilations, pad, label: '' };
  c.label = `x[${c.batch},${inH},${inW},${c.inC}] k${kH}x${kW} out${c.outC} s${strides} d${dilations} pad ${JSON.stringify(pad)}`;
  return c;
}

/** Random shape of the given rank, dims 1..maxDim. */
export function randomShape(random: ReturnType<typeof makeRandom>, rank: number, maxDim = 5): number[] {
  return Array.from({ length: rank }, () => random.int(1, maxDim));
}

/** Slice, split, concat, gather (+ its gradient, UnsortedSegmentSum), transpose and tile on random shapes and dtypes. */
export function dataMovementCases(seed: number, count: number): { label: string; run: () => tf.Tensor[] }[] {
  const random = makeRandom(seed);
  return Array.from({ length: count }, () => {
    const rank = random.int(1, 4);
    const shape = randomShape(random, rank);
    const dtype = random.pick(['float32', 'int32'] as const);
    const values = Array.from(randomValues(random, shape), (v) => (dtype === 'int32' ? Math.round(v * 10) : v));
    const axis = random.int(0, rank - 1);
    const begin = shape.map((d) => random.int(0, d - 1));
    const size = shape.map((d, i) => random.pick([-1, random.int(0, d - begin[i])]));
    const perm = [...shape.keys()].sort(() => random.next() - 0.5);
    const reps = shape.map(() => random.int(1, 3));
    const indices = Array.from({ length: random.int(1, 6) }, () => random.int(0, shape[axis] - 1));
    const splitAt = random.int(0, shape[axis]);
    const k = random.int(1, Math.min(shape[rank - 1], 5));
    const padValue = random.pick([0, 2]);
    const paddings = shape.map((): [number, number] => [random.int(0, 2), random.int(0, 2)]);
    // The atrous pair: block over axis 1 (and 2), padded so the blocked axes divide.
    const block = shape.slice(1, Math.min(rank, 3)).map(() => random.int(1, 3));
    const blockPaddings = block.map((b, i): [number, number] => {
      const before = random.int(0, 2);
      return [before, (b - ((shape[i + 1] + before) % b)) % b];
    });
    return {
      label: `${dtype}[${shape}] axis ${axis} begin ${begin} size ${size} perm ${perm} reps ${reps} indices ${indices} top ${k} pad ${paddings} block ${block} ${blockPaddings}`,
      run: () => {
        const x = tf.tensor(values, shape, dtype);
        const outputs: tf.Tensor[] = [
          tf.slice(x, begin, size),
          ...tf.split(x, [splitAt, shape[axis] - splitAt], axis),
          tf.concat([x, tf.slice(x, 0, shape.map((d, i) => (i === axis ? Math.max(1, d - 1) : d)))], axis),
          tf.gather(x, tf.tensor1d(indices, 'int32'), axis),
          tf.transpose(x, perm),
          tf.tile(x, reps),
          ...Object.values(tf.topk(x, k)), // int32 values have ties: lower indices first
          tf.pad(x, paddings, padValue),
          // One-hot (indices past depth, negative ones: all off) and comparisons, same shape and with a scalar.
          tf.oneHot(tf.cast(x, 'int32'), 4, 3, -1),
          tf.equal(x, tf.reverse(x)),
          tf.notEqual(x, tf.scalar(values[0]!, dtype)),
          tf.less(x, tf.reverse(x)),
          tf.lessEqual(tf.scalar(values[0]!, dtype), x),
          tf.greater(x, tf.scalar(values[0]!, dtype)),
          tf.greaterEqual(x, tf.reverse(x)),
          tf.equal(x, tf.slice(x, 0, shape.map((d, i) => (i === rank - 1 ? 1 : d)))), // a broadcast: tfjs's kernel
        ];
        if (rank >= 2) {
          const batched = tf.spaceToBatchND(x, block, blockPaddings);
          outputs.push(batched, tf.batchToSpaceND(batched, block, blockPaddings));
          if (dtype === 'float32') outputs.push(tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.spaceToBatchND(t, block, blockPaddings))))(x));
        }
        if (dtype === 'float32') {
          outputs.push(tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, tf.tensor1d(indices, 'int32'), axis))))(x));
        }
        return outputs.map((t) => tf.cast(t, 'float32'));
      },
    };
  });
}

/**
 * Broadcasting binary ops (a keeps the rank with some axes at 1, b may also drop leading axes) and
 * reductions over contiguous axes; the first output is a + b.
 */
export function elementwiseCases(seed: number, count: number): { label: string; run: () => tf.Tensor[] }[] {
  const random = makeRandom(seed);
  return Array.from({ length: count }, () => {
    const outShape = randomShape(random, random.int(1, 4), 6);
    const aShape = outShape.map((d) => (random.next() < 0.3 ? 1 : d));
    const bShape = random.next() < 0.3 ? outShape : outShape.slice(random.int(0, outShape.length)).map((d) => (random.next() < 0.4 ? 1 : d));
    const a = randomValues(random, aShape), b = randomValues(random, bShape);
    a[0] = random.pick([a[0], NaN, 0]);
    const first = random.int(0, outShape.length - 1);
    const axes = Array.from({ length: random.int(1, outShape.length - first) }, (_, k) => first + k);
    const keepDims = random.next() < 0.5;
    return {
      label: `elementwise a[${aShape}] b[${bShape}] axes ${axes} keepDims ${keepDims}`,
      run: () => {
        const at = tf.tensor(a, aShape), bt = tf.tensor(b, bShape);
        const x = tf.add(at, bt);
        return [
          x, tf.sub(at, bt), tf.mul(at, bt), tf.div(at, bt), tf.squaredDifference(at, bt), tf.maximum(at, bt), tf.minimum(at, bt),
          tf.sum(x, axes, keepDims), tf.mean(x, axes, keepDims), tf.max(x, axes, keepDims), tf.min(x, axes, keepDims), tf.sum(x, [0, outShape.length - 1]),
        ];
      },
    };
  });
}
