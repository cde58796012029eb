// Number helpers shared by this plugin's tests.

/** max(floor, max |v|) without spreading a large array into arguments. */
export function largestMagnitude(values: Float32Array, floor: number): number {
  let largest = floor;
  for (const v of values) largest = Math.max(largest, Math.abs(v));
  return largest;
}

/** Seeded uniform values in [low, high) (a 32-bit LCG: the same numbers on every machine). */
export function random(count: number, seed: number, low = -1, high = 1): Float32Array {
  let state = seed >>> 0 || 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = low + ((high - low) * state) / 2 ** 32;
  }
  return out;
}
