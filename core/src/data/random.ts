import type { RandomSource } from '../components';
import { describeValue } from '../config/validation';

/** The four 32-bit words of an sfc32 generator: plain numbers, so it serialises as JSON. */
export type RandomState = [number, number, number, number];

/** splitmix32 step: spreads arbitrary integers (seed, epoch, position) into well-mixed 32-bit words. */
function splitmix32(value: number): number {
  let z = (value + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A small seeded PRNG (sfc32) whose whole state is four integers. Every random draw of the data
 * pipeline comes from one of these, so a run is reproducible and a loader can be resumed exactly.
 */
export class SeededRandom implements RandomSource {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  private constructor(state: RandomState) {
    [this.a, this.b, this.c, this.d] = state.map((word) => word >>> 0) as RandomState;
  }

  /** A generator derived from any list of integers, e.g. `(seed)`, `(seed, epoch)` or `(seed, epoch, position)`. */
  static fromSeed(...keys: number[]): SeededRandom {
    let h = 0x243f6a88;
    for (const key of keys) {
      if (!Number.isFinite(key)) throw new RangeError(`SeededRandom: seed parts must be finite numbers, got ${key}`);
      // Mix both 32-bit halves so seeds above 2^32 still differ.
      h = splitmix32(h ^ splitmix32(key >>> 0) ^ Math.imul(Math.floor(key / 0x100000000) | 0, 0x27d4eb2d));
    }
    const generator = new SeededRandom([splitmix32(h), splitmix32(h + 1), splitmix32(h + 2), splitmix32(h + 3)]);
    for (let i = 0; i < 12; i++) generator.nextUint32(); // warm-up, as sfc32 recommends
    return generator;
  }

  static fromState(state: RandomState): SeededRandom {
    if (!Array.isArray(state) || state.length !== 4 || state.some((word) => !Number.isInteger(word))) {
      throw new RangeError(`SeededRandom: a state is four integers, got ${describeValue(state)}`);
    }
    return new SeededRandom(state);
  }

  getState(): RandomState {
    return [this.a, this.b, this.c, this.d];
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  random(): number {
    return this.nextUint32() / 4294967296;
  }

  /** numpy's `uniform(low, high)`. */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.random();
  }

  /** numpy's `randint(low, high)`: an integer in [low, high). */
  randint(low: number, high: number): number {
    return low + Math.floor(this.random() * (high - low));
  }

  /** A standard normal draw (Box–Muller). */
  normal(): number {
    const u = 1 - this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
  }

  /** Fisher–Yates shuffle of 0..n-1. */
  permutation(n: number): number[] {
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.randint(0, i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order;
  }
}

/** numpy-style helpers on any RandomSource (transforms receive the interface, not the class). */
export function uniform(random: RandomSource, low: number, high: number): number {
  return low + (high - low) * random.random();
}

/** An integer in [low, high) — numpy's `randint(low, high)`. */
export function randint(random: RandomSource, low: number, high: number): number {
  return low + Math.floor(random.random() * (high - low));
}
