import { SeededRandom } from '../data/random';

/**
 * Seeds of tfjs's random ops (parameter init, dropout masks). tfjs draws an unseeded op from
 * Math.random, so without this two runs with the same `--seed` would start from different weights.
 */
let generator: SeededRandom | undefined;

export function seedRandomOps(seed: number): void {
  generator = SeededRandom.fromSeed(seed);
}

/** A seed for the next random op, or undefined (tfjs's own randomness) when no seed was set. */
export function nextOpSeed(): number | undefined {
  return generator ? Math.floor(generator.random() * 2 ** 31) : undefined;
}
