/**
 * Label-value checks shared by the per-sample check in `CustomDataset.get` and `checkDataset`:
 * one pass over the label map into a histogram, then a look at the (few) distinct values.
 */

/** What a label value may be: a class index in [0, numClasses) or the ignore index. */
export interface LabelRange {
  numClasses: number;
  ignoreIndex: number;
}

/** A label value that is neither a class nor the ignore index, and how many pixels have it. */
export interface BadLabelValue {
  value: number;
  pixels: number;
}

/**
 * Pixel count of every value of a label map, as [value, count] pairs in ascending value order. Uint8 and
 * Uint16 maps (what label PNGs decode to) go through a flat histogram; other arrays through a Map.
 */
export function labelValueCounts(data: ArrayLike<number>): [number, number][] {
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray || data instanceof Uint16Array) {
    const histogram = new Uint32Array(data instanceof Uint16Array ? 65536 : 256);
    for (let i = 0; i < data.length; i++) histogram[data[i]!]!++;
    const counts: [number, number][] = [];
    for (let value = 0; value < histogram.length; value++) if (histogram[value]! > 0) counts.push([value, histogram[value]!]);
    return counts;
  }
  const counts = new Map<number, number>();
  for (let i = 0; i < data.length; i++) counts.set(data[i]!, (counts.get(data[i]!) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => a[0] - b[0]);
}

/** The values of `counts` outside [0, numClasses) that are not the ignore index. */
export function badLabelValues(counts: readonly (readonly [number, number])[], range: LabelRange): BadLabelValue[] {
  return counts
    .filter(([value]) => value !== range.ignoreIndex && !(Number.isInteger(value) && value >= 0 && value < range.numClasses))
    .map(([value, pixels]) => ({ value, pixels }));
}

/** "7 (12 pixels), 9 (1 pixel)" — at most `max` values, then how many more. */
export function describeBadValues(bad: readonly BadLabelValue[], max = 5): string {
  const shown = bad.slice(0, max).map(({ value, pixels }) => `${value} (${pixels} pixel${pixels === 1 ? '' : 's'})`);
  const more = bad.length - max;
  return shown.join(', ') + (more > 0 ? ` and ${more} more value${more === 1 ? '' : 's'}` : '');
}
