import { SegkitError } from '../errors';

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
  /** β of the F-score. */
  beta?: number;
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

  reset(): void {
    for (const key of ['intersect', 'union', 'pred', 'label'] as const) this.totals[key].fill(0);
    this.images = 0;
  }

  /** The summed statistics (copies). */
  stats(): AreaStats {
    const { intersect, union, pred, label } = this.totals;
    return { intersect: intersect.slice(), union: union.slice(), pred: pred.slice(), label: label.slice() };
  }

  compute(metrics: readonly string[] | string, options: ComputeOptions = {}): EvalResults {
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
export function totalAreaToMetrics(totals: AreaStats, metrics: readonly string[] | string, options: ComputeOptions = {}): EvalResults {
  const requested = typeof metrics === 'string' ? [metrics] : [...metrics];
  const unknown = requested.filter((m) => !(EVAL_METRICS as readonly string[]).includes(m));
  if (unknown.length > 0 || requested.length === 0) {
    throw new SegkitError(`evaluation.metric: expected one or more of ${EVAL_METRICS.join(', ')}, got ${requested.length === 0 ? 'none' : unknown.join(', ')}`);
  }
  const numClasses = totals.intersect.length;
  const classNames = options.classNames ?? Array.from({ length: numClasses }, (_, i) => String(i));
  if (classNames.length !== numClasses) {
    throw new SegkitError(`evaluation: expected ${numClasses} class names, got ${classNames.length}`);
  }
  const beta2 = (options.beta ?? 1) ** 2;
  const { intersect, union, pred, label } = totals;
  const perClass = (f: (c: number) => number): Float64Array => Float64Array.from({ length: numClasses }, (_, c) => f(c));

  // Insertion order matters: it is the order of the summary and per-class columns (an existing key keeps its place).
  const values = new Map<string, Float64Array>();
  values.set('aAcc', Float64Array.of(sum(intersect) / sum(label)));
  for (const metric of requested) {
    if (metric === 'mIoU') {
      values.set('IoU', perClass((c) => intersect[c]! / union[c]!));
      values.set('Acc', perClass((c) => intersect[c]! / label[c]!));
    } else if (metric === 'mDice') {
      values.set('Dice', perClass((c) => (2 * intersect[c]!) / (pred[c]! + label[c]!)));
      values.set('Acc', perClass((c) => intersect[c]! / label[c]!));
    } else {
      const precision = perClass((c) => intersect[c]! / pred[c]!);
      const recall = perClass((c) => intersect[c]! / label[c]!);
      values.set('Fscore', perClass((c) => ((1 + beta2) * precision[c]! * recall[c]!) / (beta2 * precision[c]! + recall[c]!)));
      values.set('Precision', precision);
      values.set('Recall', recall);
    }
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

/** Per-class columns in the order they appear in `results`. */
const CLASS_COLUMNS = ['IoU', 'Acc', 'Dice', 'Fscore', 'Precision', 'Recall'] as const;

function classColumns(results: EvalResults, classNames: readonly string[]): string[] {
  const first = classNames[0];
  if (first === undefined) return [];
  const columns: string[] = [];
  for (const key of Object.keys(results)) {
    const column = CLASS_COLUMNS.find((name) => key === `${name}.${first}`);
    if (column) columns.push(column);
  }
  return columns;
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
