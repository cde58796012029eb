import { seedRandomOps } from '../nn/random';

/** Seeds every random source of a run: parameter init and dropout (the data loader takes the seed itself). */
export function seedEverything(seed: number): void {
  seedRandomOps(seed);
}
