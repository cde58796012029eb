import type { Module } from './module';

/**
 * Counts forward FLOPs the way MMCV's `get_flops` does (1 multiply-add = 1 FLOP): while a counter
 * is active, layers report their analytic cost (convolutions, norms, activations, pooling,
 * `Upsample` modules). Functional ops (e.g. `resize`) are not counted, as in MMCV.
 */
export class FlopCounter {
  readonly byModule = new Map<Module, number>();
  total = 0;

  add(module: Module, flops: number): void {
    this.total += flops;
    this.byModule.set(module, (this.byModule.get(module) ?? 0) + flops);
  }
}

let activeCounter: FlopCounter | null = null;
let shapesOnly = false;

/**
 * Runs `fn` with a fresh FLOP counter active and returns the counter along with the result.
 * With `shapesOnly`, convolutions skip their arithmetic and return zeros of the right shape: the
 * count is analytic anyway, and a full-size model is then described in seconds on any backend.
 */
export function countFlops<T>(fn: () => T, options: { shapesOnly?: boolean } = {}): { result: T; counter: FlopCounter } {
  const previous = { counter: activeCounter, shapesOnly };
  const counter = new FlopCounter();
  activeCounter = counter;
  shapesOnly = options.shapesOnly ?? false;
  try {
    return { result: fn(), counter };
  } finally {
    activeCounter = previous.counter;
    shapesOnly = previous.shapesOnly;
  }
}

/** True inside `countFlops(fn, { shapesOnly: true })`: layers may return correctly shaped zeros. */
export function isShapesOnly(): boolean {
  return shapesOnly;
}

/** Called by layers in `forward`; a no-op unless a counter is active. */
export function reportFlops(module: Module, flops: number): void {
  if (activeCounter) activeCounter.add(module, flops);
}

export function isCountingFlops(): boolean {
  return activeCounter !== null;
}
