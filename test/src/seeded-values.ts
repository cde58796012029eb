/** n seeded values in [-1, 1) (an LCG: the same numbers on every machine), for the fused-optimizer tests. */
export function seededValues(seed: number, n: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length: n }, () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return (2 * state) / 2147483648 - 1;
  });
}
