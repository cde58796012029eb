import * as tf from '@tensorflow/tfjs-core';
import { nextOpSeed } from './random';

/**
 * Parameter initialisers (PyTorch's `nn.init` / MMCV's `*_init`). Each replaces the variable's value
 * in place; `fanIn`/`fanOut` follow PyTorch's definition for conv weights [out, in/groups, kh, kw],
 * which segkit stores as HWIO [kh, kw, in/groups, out].
 */
export function fanInOut(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 4) {
    const [kh, kw, inPerGroup, out] = shape as [number, number, number, number];
    return { fanIn: kh * kw * inPerGroup, fanOut: kh * kw * out };
  }
  if (shape.length === 2) return { fanIn: shape[0]!, fanOut: shape[1]! };
  const size = shape.reduce((a, b) => a * b, 1);
  return { fanIn: size, fanOut: size };
}

function replace(variable: tf.Variable, value: tf.Tensor): void {
  variable.assign(value);
  value.dispose();
}

export function uniformInit(variable: tf.Variable, low: number, high: number): void {
  replace(variable, tf.randomUniform(variable.shape, low, high, 'float32', nextOpSeed()));
}

export function normalInit(variable: tf.Variable, mean = 0, std = 1): void {
  replace(variable, tf.randomNormal(variable.shape, mean, std, 'float32', nextOpSeed()));
}

export function constantInit(variable: tf.Variable, value: number): void {
  replace(variable, tf.fill(variable.shape, value, variable.dtype));
}

/** MMCV's `kaiming_init` (default: mode fan_out, nonlinearity relu, normal distribution), a = negative slope. */
export function kaimingInit(
  variable: tf.Variable,
  options: { mode?: 'fan_in' | 'fan_out'; nonlinearity?: 'relu' | 'leaky_relu'; a?: number; distribution?: 'normal' | 'uniform' } = {},
): void {
  const { mode = 'fan_out', nonlinearity = 'relu', a = 0, distribution = 'normal' } = options;
  const { fanIn, fanOut } = fanInOut(variable.shape);
  const gain = nonlinearity === 'relu' ? Math.SQRT2 : Math.sqrt(2 / (1 + a * a));
  const std = gain / Math.sqrt(mode === 'fan_in' ? fanIn : fanOut);
  if (distribution === 'normal') normalInit(variable, 0, std);
  else uniformInit(variable, -Math.sqrt(3) * std, Math.sqrt(3) * std);
}
