/**
 * A mistake in user input (a config, a file, a command-line argument).
 * The CLI prints `message` alone — never a stack trace — and exits non-zero.
 */
export class SegkitError extends Error {
  constructor(message: string, readonly configPath?: string) {
    super(message);
    this.name = 'SegkitError';
  }
}

export function isSegkitError(error: unknown): error is SegkitError {
  return error instanceof SegkitError;
}

/** Levenshtein distance, used to suggest the nearest valid name for a typo. */
export function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0]!;
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j]!;
      const cost = a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1;
      previous[j] = Math.min(above + 1, previous[j - 1]! + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return previous[b.length]!;
}

/** The candidate closest to `name`, or undefined when none is plausibly meant. */
export function nearestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  const plausible = bestDistance <= Math.max(2, Math.ceil(Math.max(name.length, best.length) / 3));
  const contains = best.toLowerCase().includes(name.toLowerCase()) || name.toLowerCase().includes(best.toLowerCase());
  return plausible || contains ? best : undefined;
}

/** `a.b.c` joined the way config paths are shown to users; list indices as `a.0.b`. */
export function joinPath(base: string, key: string | number): string {
  return base === '' ? String(key) : `${base}.${key}`;
}
