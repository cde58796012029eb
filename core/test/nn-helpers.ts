import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';

/** Asserts every element of `actual` is within `tolerance` of the flat `expected` values. */
export function expectClose(actual: tf.Tensor, expected: number[], tolerance = 1e-5): void {
  const values = Array.from(actual.dataSync());
  expect(values.length, 'number of elements').to.equal(expected.length);
  values.forEach((value, i) => expect(value, `element ${i}`).to.be.closeTo(expected[i]!, tolerance));
}

/** Runs `fn` and asserts it leaves no tensor behind. */
export function expectNoLeak(fn: () => void): void {
  const before = tf.memory().numTensors;
  fn();
  expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
}

/** Sets a parameter's value (tests choose hand-friendly weights). */
export function setValue(variable: tf.Variable, values: number[]): void {
  tf.tidy(() => variable.assign(tf.tensor(values, variable.shape, variable.dtype)));
}
