import { seedRandomOps } from '../nn/random';

/** Seeds every random source of a run: parameter init and dropout (the data loader takes the seed itself). */
export function seedEverything(seed: number): void {
  seedRandomOps(seed);
}

/**
 * Reseeds dropout for one iteration from (seed, iteration), so that a resumed run draws the same
 * masks as an uninterrupted one without saving generator state.
 */
export function seedIteration(seed: number, iter: number): void {
  seedRandomOps((Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + iter) >>> 0);
}
