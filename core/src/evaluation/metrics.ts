import { z } from 'zod';
import { SegkitError } from '../errors';
import type { Metric } from '../components';
import type { ComponentOf } from '../plugin-system/registries';

/** The summary metrics MMSegmentation 0.x's `dataset.evaluate` accepts. */
export const EVAL_METRICS = ['mIoU', 'mDice', 'mFscore'] as const;
export type EvalMetric = (typeof EVAL_METRICS)[number];

/** Per-class pixel counts of one image (or summed over a dataset). */
export interface AreaStats {
  intersect: Float64Array;
  union: Float64Array;
  pred: Float64Array;
  label: Float64Array;
}

export type LabelArray = Int32Array | Uint8Array;

/**
 * Per-class histograms of one prediction against its ground truth (MMSegmentation's `intersect_and_union`).
 * Pixels whose GT equals `ignoreIndex` are dropped first; afterwards values outside [0, numClasses) fall
 * outside every histogram bin, exactly as `torch.histc(min=0, max=numClasses-1)` drops them.
 */
export function intersectAndUnion(pred: LabelArray, gt: LabelArray, numClasses: number, ignoreIndex = 255): AreaStats {
  if (pred.length !== gt.length) {
    throw new SegkitError(`evaluation: the prediction has ${pred.length} pixels but the ground truth has ${gt.length}; resize the prediction to the ground truth's shape`);
  }
  const intersect = new Float64Array(numClasses);
  const predArea = new Float64Array(numClasses);
  const labelArea = new Float64Array(numClasses);
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i]!;
    if (g === ignoreIndex) continue;
    const p = pred[i]!;
    const predInRange = p >= 0 && p < numClasses;
    if (predInRange) predArea[p]!++;
    if (g >= 0 && g < numClasses) {
      labelArea[g]!++;
      if (p === g) intersect[g]!++;
    }
  }
  const union = new Float64Array(numClasses);
  for (let c = 0; c < numClasses; c++) union[c] = predArea[c]! + labelArea[c]! - intersect[c]!;
  return { intersect, union, pred: predArea, label: labelArea };
}

export interface ComputeOptions {
  /** One name per class; defaults to the class indices. */
  classNames?: readonly string[];
  /** Replaces NaN (0/0) per-class values before averaging, like numpy's nan_to_num. */
  nanToNum?: number;
}

function perClassOf(totals: AreaStats, f: (c: number) => number): Float64Array {
  return Float64Array.from({ length: totals.intersect.length }, (_, c) => f(c));
}

function accuracy(totals: AreaStats): Float64Array {
  return perClassOf(totals, (c) => totals.intersect[c]! / totals.label[c]!);
}

/** mIoU: per-class IoU and accuracy. */
export const MIOU: Metric = {
  name: 'mIoU',
  perClass: (t) => [['IoU', perClassOf(t, (c) => t.intersect[c]! / t.union[c]!)], ['Acc', accuracy(t)]],
};

/** mDice: per-class Dice and accuracy. */
export const MDICE: Metric = {
  name: 'mDice',
  perClass: (t) => [['Dice', perClassOf(t, (c) => (2 * t.intersect[c]!) / (t.pred[c]! + t.label[c]!))], ['Acc', accuracy(t)]],
};

/** mFscore with MMSegmentation's β (1 by default): per-class F-score, precision and recall. */
export function fscoreMetric(beta = 1): Metric {
  const beta2 = beta ** 2;
  return {
    name: 'mFscore',
    perClass: (t) => {
      const precision = perClassOf(t, (c) => t.intersect[c]! / t.pred[c]!);
      const recall = perClassOf(t, (c) => t.intersect[c]! / t.label[c]!);
      const fscore = perClassOf(t, (c) => ((1 + beta2) * precision[c]! * recall[c]!) / (beta2 * precision[c]! + recall[c]!));
      return [['Fscore', fscore], ['Precision', precision], ['Recall', recall]];
    },
  };
}

/** Core's metrics, also registered in the `metrics` registry (where plugins add theirs). */
export const BUILTIN_METRICS: Readonly<Record<EvalMetric, Metric>> = { mIoU: MIOU, mDice: MDICE, mFscore: fscoreMetric(1) };

export const metricDefinitions: readonly ComponentOf<'metrics'>[] = [
  { type: 'mIoU', schema: z.object({}), create: () => MIOU, description: 'per-class IoU and accuracy (MMSegmentation mIoU)' },
  { type: 'mDice', schema: z.object({}), create: () => MDICE, description: 'per-class Dice and accuracy (MMSegmentation mDice)' },
  {
    type: 'mFscore',
    schema: z.object({ beta: z.number().positive().default(1) }),
    create: (options: { beta: number }) => fscoreMetric(options.beta),
    description: 'per-class F-score, precision and recall (MMSegmentation mFscore, beta)',
  },
];

/** Metric objects for names of core's built-in metrics (callers without a kernel); objects pass through. */
export function resolveMetrics(metrics: readonly (Metric | string)[] | string): Metric[] {
  const requested = typeof metrics === 'string' ? [metrics] : [...metrics];
  const unknown = requested.filter((m): m is string => typeof m === 'string' && !(m in BUILTIN_METRICS));
  if (unknown.length > 0 || requested.length === 0) {
    throw new SegkitError(`evaluation.metric: expected one or more of ${EVAL_METRICS.join(', ')}, got ${requested.length === 0 ? 'none' : unknown.join(', ')}`);
  }
  return requested.map((m) => (typeof m === 'string' ? BUILTIN_METRICS[m as EvalMetric] : m));
}

/**
 * 0.x-style results: fractions rounded to 2 decimals in percent. Summary keys first (`aAcc`, `mIoU`, `mAcc`, ...),
 * then per-class keys grouped by metric (`IoU.<class>` for every class, then `Acc.<class>`, ...).
 * Classes whose value is 0/0 are NaN unless `nanToNum` is given.
 */
export type EvalResults = Record<string, number>;

/** Sums per-image statistics over a dataset and turns them into MMSegmentation's metrics. */
export class MetricAccumulator {
  private readonly totals: AreaStats;
  private images = 0;

  constructor(
    readonly numClasses: number,
    readonly ignoreIndex = 255,
  ) {
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new SegkitError(`evaluation: expected the number of classes to be a positive integer, got ${numClasses}`);
    }
    this.totals = emptyStats(numClasses);
  }

  /** Number of images added so far. */
  get count(): number {
    return this.images;
  }

  add(pred: LabelArray, gt: LabelArray): void {
    this.addStats(intersectAndUnion(pred, gt, this.numClasses, this.ignoreIndex));
  }

  /** Adds statistics computed elsewhere (e.g. in a worker). */
  addStats(stats: AreaStats): void {
    for (const key of ['intersect', 'union', 'pred', 'label'] as const) {
      const total = this.totals[key];
      const add = stats[key];
      if (add.length !== this.numClasses) {
        throw new SegkitError(`evaluation: expected statistics over ${this.numClasses} classes, got ${add.length}`);
      }
      for (let c = 0; c < this.numClasses; c++) total[c]! += add[c]!;
    }
    this.images++;
  }

  /** A copy of the summed statistics (to combine accumulators of several processes with `addStats`). */
  snapshot(): AreaStats {
    const copy = (key: keyof AreaStats) => Float64Array.from(this.totals[key]);
    return { intersect: copy('intersect'), union: copy('union'), pred: copy('pred'), label: copy('label') };
  }

  reset(): void {
    for (const key of ['intersect', 'union', 'pred', 'label'] as const) this.totals[key].fill(0);
    this.images = 0;
  }

  /** The summed statistics (copies). */
  stats(): AreaStats {
    const { intersect, union, pred, label } = this.totals;
    return { intersect: intersect.slice(), union: union.slice(), pred: pred.slice(), label: label.slice() };
  }

  compute(metrics: readonly (Metric | string)[] | string, options: ComputeOptions = {}): EvalResults {
    return totalAreaToMetrics(this.totals, metrics, options);
  }
}

function emptyStats(numClasses: number): AreaStats {
  return {
    intersect: new Float64Array(numClasses),
    union: new Float64Array(numClasses),
    pred: new Float64Array(numClasses),
    label: new Float64Array(numClasses),
  };
}

/** Metrics from summed statistics, in MMSegmentation 0.x's `total_area_to_metrics` + `evaluate` order and rounding. */
export function totalAreaToMetrics(totals: AreaStats, metrics: readonly (Metric | string)[] | string, options: ComputeOptions = {}): EvalResults {
  const requested = resolveMetrics(metrics);
  const numClasses = totals.intersect.length;
  const classNames = options.classNames ?? Array.from({ length: numClasses }, (_, i) => String(i));
  if (classNames.length !== numClasses) {
    throw new SegkitError(`evaluation: expected ${numClasses} class names, got ${classNames.length}`);
  }
  // Insertion order matters: it is the order of the summary and per-class columns (an existing key keeps its place).
  const values = new Map<string, Float64Array>();
  values.set('aAcc', Float64Array.of(sum(totals.intersect) / sum(totals.label)));
  for (const metric of requested) {
    for (const [column, perClass] of metric.perClass(totals)) if (!values.has(column)) values.set(column, perClass);
  }
  if (options.nanToNum !== undefined) {
    for (const array of values.values()) array.forEach((v, i) => (array[i] = Number.isNaN(v) ? options.nanToNum! : v));
  }

  const results: EvalResults = {};
  for (const [name, array] of values) {
    results[name === 'aAcc' ? name : `m${name}`] = roundPercent(nanMean(array)) / 100;
  }
  for (const [name, array] of values) {
    if (name === 'aAcc') continue;
    classNames.forEach((className, c) => (results[`${name}.${className}`] = roundPercent(array[c]!) / 100));
  }
  return results;
}

function sum(array: Float64Array): number {
  let total = 0;
  for (const v of array) total += v;
  return total;
}

/** numpy's nanmean: the mean over non-NaN entries; NaN when all are NaN. */
function nanMean(array: Float64Array): number {
  let total = 0;
  let n = 0;
  for (const v of array) {
    if (Number.isNaN(v)) continue;
    total += v;
    n++;
  }
  return n === 0 ? NaN : total / n;
}

/** `np.round(value * 100, 2)`: numpy rounds half to even after scaling by 10². */
function roundPercent(fraction: number): number {
  const scaled = fraction * 100 * 100;
  const floor = Math.floor(scaled);
  const diff = scaled - floor;
  const rounded = diff > 0.5 || (diff === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
  return rounded / 100;
}

// ---------------------------------------------------------------- tables

/** Per-class columns (`<column>.<class>` keys) in the order they appear in `results`, whatever metrics produced them. */
function classColumns(results: EvalResults, classNames: readonly string[]): string[] {
  const first = classNames[0];
  if (first === undefined) return [];
  const suffix = `.${first}`;
  return Object.keys(results)
    .filter((key) => key.endsWith(suffix) && !key.slice(0, -suffix.length).includes('.'))
    .map((key) => key.slice(0, -suffix.length));
}

/** The per-class table as rows of percent values (`{ Class: 'road', IoU: 97.82, Acc: 98.87 }`); NaN stays NaN. */
export function classTableRows(results: EvalResults, classNames: readonly string[]): Record<string, string | number>[] {
  const columns = classColumns(results, classNames);
  return classNames.map((className) => {
    const row: Record<string, string | number> = { Class: className };
    for (const column of columns) row[column] = toPercent(results[`${column}.${className}`]);
    return row;
  });
}

/** The two tables MMSegmentation 0.x prints after evaluation ("per class results:" and "Summary:"), PrettyTable style. */
export function formatMetricTables(results: EvalResults, classNames: readonly string[]): { perClass: string; summary: string } {
  const columns = classColumns(results, classNames);
  const perClass = prettyTable(
    ['Class', ...columns],
    classNames.map((className) => [className, ...columns.map((column) => formatPercent(results[`${column}.${className}`]))]),
  );
  const summaryKeys = Object.keys(results).filter((key) => !key.includes('.'));
  const summary = prettyTable(summaryKeys, [summaryKeys.map((key) => formatPercent(results[key]))]);
  return { perClass, summary };
}

function toPercent(fraction: number | undefined): number {
  if (fraction === undefined || Number.isNaN(fraction)) return NaN;
  return Math.round(fraction * 100 * 100) / 100;
}

function formatPercent(fraction: number | undefined): string {
  const percent = toPercent(fraction);
  return Number.isNaN(percent) ? 'nan' : percent.toFixed(2);
}

/** An ASCII table like Python's PrettyTable default: `+---+` borders, one space padding, centred cells. */
export function prettyTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const border = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (cells: readonly string[]): string => `|${widths.map((w, i) => ` ${centre(cells[i] ?? '', w)} `).join('|')}|`;
  return [border, line(header), border, ...rows.map(line), border].join('\n');
}

/** Python's str.center: with odd spare space, the extra space goes right for odd-length text and left for even-length text. */
function centre(text: string, width: number): string {
  const excess = width - text.length;
  if (excess <= 0) return text;
  const half = Math.floor(excess / 2);
  if (excess % 2 === 0) return ' '.repeat(half) + text + ' '.repeat(half);
  return text.length % 2 === 1 ? ' '.repeat(half) + text + ' '.repeat(half + 1) : ' '.repeat(half + 1) + text + ' '.repeat(half);
}
