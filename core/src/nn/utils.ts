import { describeValue } from '../config/validation';
/** A size given as one number or a [height, width] pair (PyTorch's `_pair`). */
export type Pair = number | readonly [number, number];

export function pair(value: Pair, what = 'value'): [number, number] {
  const result: [number, number] = typeof value === 'number' ? [value, value] : [value[0], value[1]];
  if (!result.every((v) => Number.isInteger(v) && v >= 0)) throw new Error(`${what}: expected non-negative integers, got ${describeValue(value)}`);
  return result;
}
