import * as fs from 'fs';
import * as path from 'path';
import { SegkitError } from '../errors';
import { svgToPng } from '../io/image';
import { COLOURS, escapeXml, formatTick, niceAxis, readLogCurves, type CurveSeries } from './plot';

/** A learning-rate key (`lr`, or a param group's `lr.<key>`): drawn on the right-hand axis next to losses. */
export function isLrKey(key: string): boolean {
  return key === 'lr' || key.startsWith('lr.');
}

/** One line of a multi-run figure. */
export interface LabelledSeries extends CurveSeries {
  /** Legend text. */
  label: string;
}

/**
 * Trailing moving average: point i becomes the mean of points max(0, i−window+1)..i, so the first points
 * average what exists so far and the curve keeps every iteration. `window` 1 leaves the values unchanged.
 */
export function movingAverage(values: readonly number[], window: number): number[] {
  if (!Number.isInteger(window) || window < 1) throw new SegkitError(`--smooth: expected a window of at least 1 point, got ${window}`);
  // Window 1 returns the values exactly (the running sum below would add rounding).
  if (window === 1) return [...values];
  const out: number[] = [];
  let sum = 0;
  values.forEach((value, i) => {
    sum += value;
    if (i >= window) sum -= values[i - window]!;
    out.push(sum / Math.min(i + 1, window));
  });
  return out;
}

export interface AnalyzeLogsOptions {
  keys: readonly string[];
  /** One legend entry per (log, key) pair, logs outer (default: the key, prefixed by the log's name when there are several logs). */
  legend?: readonly string[];
  /** Moving-average window in logged points for every key but learning rates (default 1: no smoothing). */
  smooth?: number;
  logScale?: boolean;
  title?: string;
  width?: number;
  height?: number;
  warn?: (message: string) => void;
}

/** The series of every (log, key) pair, labelled and smoothed. */
export function readRuns(logs: readonly string[], options: AnalyzeLogsOptions): LabelledSeries[] {
  if (logs.length === 0) throw new SegkitError('analyze-logs: expected at least one JSON log');
  if (options.keys.length === 0) throw new SegkitError('--keys: expected at least one log key');
  const pairs = logs.length * options.keys.length;
  if (options.legend && options.legend.length !== pairs) {
    throw new SegkitError(`--legend: expected ${pairs} names (one per log and key: ${logs.length} log(s) × ${options.keys.length} key(s)), got ${options.legend.length}`);
  }
  const window = options.smooth ?? 1;
  const series: LabelledSeries[] = [];
  logs.forEach((log) => {
    for (const curve of readLogCurves(log, options.keys, options.warn)) {
      // A learning rate is a schedule, not a noisy measurement: smoothing would only shift it.
      const smoothed = movingAverage(curve.points.map((p) => p.value), isLrKey(curve.key) ? 1 : window);
      const defaultLabel = logs.length > 1 ? `${path.basename(log).replace(/\.log\.json$|\.json$/, '')} ${curve.key}` : curve.key;
      series.push({ key: curve.key, label: options.legend?.[series.length] ?? defaultLabel, points: curve.points.map((p, i) => ({ iter: p.iter, value: smoothed[i]! })) });
    }
  });
  return series;
}

/** Draws several runs' curves on one figure (MMSegmentation's analyze_logs.py plot_curve over several logs) as SVG or PNG. */
export async function analyzeLogs(logs: readonly string[], out: string, options: AnalyzeLogsOptions): Promise<string> {
  const format = path.extname(out).toLowerCase();
  if (format !== '.svg' && format !== '.png') throw new SegkitError(`--out: expected a file ending in .svg or .png, got ${out}`);
  const series = readRuns(logs, options);
  const svg = renderRunsSvg(series, options);
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, format === '.svg' ? svg : await svgToPng(svg));
  return out;
}

interface Axis {
  min: number;
  max: number;
  ticks: number[];
  label: (tick: number) => string;
  /** Position in [0, 1] of a value along the axis. */
  fraction: (value: number) => number;
}

function linearAxis(values: readonly number[]): Axis {
  const axis = niceAxis(Math.min(...values), Math.max(...values));
  return { ...axis, label: (t) => formatTick(t, axis.step), fraction: (v) => (v - axis.min) / (axis.max - axis.min) };
}

/** Decades covering the values; every value must be positive. */
function logAxis(values: readonly number[], what: string): Axis {
  const bad = values.find((v) => !(v > 0));
  if (bad !== undefined) throw new SegkitError(`--log-scale: ${what} has the value ${bad}; a log scale needs positive values`);
  let lo = Math.floor(Math.log10(Math.min(...values)));
  let hi = Math.ceil(Math.log10(Math.max(...values)));
  if (lo === hi) hi += 1;
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
  [lo, hi] = [10 ** lo, 10 ** hi];
  return { min: lo, max: hi, ticks, label: (t) => t.toExponential(0).replace('e+', 'e'), fraction: (v) => Math.log10(v / lo) / Math.log10(hi / lo) };
}

/**
 * An SVG line chart of labelled series against iteration: losses and metrics on the left axis, learning rates
 * on a second (right) axis when they are plotted with other keys; optional log scale on both value axes.
 */
export function renderRunsSvg(series: readonly LabelledSeries[], options: { title?: string; width?: number; height?: number; logScale?: boolean } = {}): string {
  const width = options.width ?? 900;
  const height = options.height ?? 520;
  const title = options.title;
  const right = series.some((s) => isLrKey(s.key)) && series.some((s) => !isLrKey(s.key)) ? series.filter((s) => isLrKey(s.key)) : [];
  const leftSeries = series.filter((s) => !right.includes(s));
  const margin = { left: 80, right: right.length > 0 ? 84 : 24, top: title ? 44 : 20, bottom: 56 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  if (plotWidth < 40 || plotHeight < 40) throw new SegkitError(`analyze-logs: ${width}×${height} pixels is too small for a chart`);
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) throw new SegkitError('analyze-logs: the selected keys have no numeric values with an iteration');

  const valueAxis = (group: readonly LabelledSeries[], what: string): Axis => {
    const values = group.flatMap((s) => s.points.map((p) => p.value));
    return options.logScale ? logAxis(values, what) : linearAxis(values);
  };
  const xAxis = linearAxis(all.map((p) => p.iter));
  const leftAxis = valueAxis(leftSeries, leftSeries.map((s) => s.label).join(', '));
  const rightAxis = right.length > 0 ? valueAxis(right, right.map((s) => s.label).join(', ')) : undefined;
  const f = (v: number): string => v.toFixed(2);
  const px = (x: number): number => margin.left + xAxis.fraction(x) * plotWidth;
  const py = (axis: Axis, y: number): number => margin.top + plotHeight - axis.fraction(y) * plotHeight;
  const bottom = margin.top + plotHeight;
  const plotRight = margin.left + plotWidth;
  const leftLabel = leftSeries.length === 1 ? leftSeries[0]!.key : [...new Set(leftSeries.map((s) => s.key))].length === 1 ? leftSeries[0]!.key : 'value';

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
  if (title) parts.push(`<text x="${f(width / 2)}" y="26" text-anchor="middle" font-size="16">${escapeXml(title)}</text>`);
  parts.push('<g class="grid" stroke="#e0e0e0">');
  for (const tick of xAxis.ticks) parts.push(`<line x1="${f(px(tick))}" y1="${margin.top}" x2="${f(px(tick))}" y2="${bottom}"/>`);
  for (const tick of leftAxis.ticks) parts.push(`<line x1="${margin.left}" y1="${f(py(leftAxis, tick))}" x2="${plotRight}" y2="${f(py(leftAxis, tick))}"/>`);
  parts.push('</g>');
  parts.push('<g class="tick-labels" fill="#000000">');
  for (const tick of xAxis.ticks) {
    parts.push(`<line x1="${f(px(tick))}" y1="${bottom}" x2="${f(px(tick))}" y2="${bottom + 5}" stroke="#000000"/>`);
    parts.push(`<text x="${f(px(tick))}" y="${bottom + 18}" text-anchor="middle">${xAxis.label(tick)}</text>`);
  }
  for (const tick of leftAxis.ticks) {
    parts.push(`<line x1="${margin.left - 5}" y1="${f(py(leftAxis, tick))}" x2="${margin.left}" y2="${f(py(leftAxis, tick))}" stroke="#000000"/>`);
    parts.push(`<text x="${margin.left - 8}" y="${f(py(leftAxis, tick) + 4)}" text-anchor="end">${leftAxis.label(tick)}</text>`);
  }
  if (rightAxis) {
    for (const tick of rightAxis.ticks) {
      parts.push(`<line x1="${plotRight}" y1="${f(py(rightAxis, tick))}" x2="${plotRight + 5}" y2="${f(py(rightAxis, tick))}" stroke="#000000"/>`);
      parts.push(`<text x="${plotRight + 8}" y="${f(py(rightAxis, tick) + 4)}">${rightAxis.label(tick)}</text>`);
    }
  }
  parts.push('</g>');
  parts.push(`<rect class="frame" x="${margin.left}" y="${margin.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#000000"/>`);
  const yMid = f(margin.top + plotHeight / 2);
  parts.push(`<text class="x-label" x="${f(margin.left + plotWidth / 2)}" y="${height - 14}" text-anchor="middle" font-size="14">iter</text>`);
  parts.push(`<text class="y-label" x="18" y="${yMid}" text-anchor="middle" font-size="14" transform="rotate(-90 18 ${yMid})">${escapeXml(leftLabel)}</text>`);
  if (rightAxis) {
    const x = width - 14;
    parts.push(`<text class="y2-label" x="${x}" y="${yMid}" text-anchor="middle" font-size="14" transform="rotate(90 ${x} ${yMid})">lr</text>`);
  }

  series.forEach((s, i) => {
    const axis = right.includes(s) ? rightAxis! : leftAxis;
    const colour = COLOURS[i % COLOURS.length]!;
    // Learning rates dashed, so the two axes' curves are told apart without the legend.
    const dash = right.includes(s) ? ' stroke-dasharray="6 3"' : '';
    const points = s.points.map((p) => `${f(px(p.iter))},${f(py(axis, p.value))}`).join(' ');
    parts.push(`<polyline data-key="${escapeXml(s.key)}" data-label="${escapeXml(s.label)}" data-axis="${axis === leftAxis ? 'left' : 'right'}" points="${points}" fill="none" stroke="${colour}" stroke-width="1.5" stroke-linejoin="round"${dash}/>`);
  });

  const rowHeight = 18;
  const legendWidth = 40 + 7 * Math.max(...series.map((s) => s.label.length));
  const legendX = plotRight - legendWidth - 10;
  const legendY = margin.top + 10;
  parts.push(`<g class="legend"><rect x="${legendX}" y="${legendY}" width="${legendWidth}" height="${series.length * rowHeight + 8}" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`);
  series.forEach((s, i) => {
    const y = legendY + 4 + rowHeight * i + rowHeight / 2;
    const dash = right.includes(s) ? ' stroke-dasharray="6 3"' : '';
    parts.push(`<line x1="${legendX + 8}" y1="${y}" x2="${legendX + 30}" y2="${y}" stroke="${COLOURS[i % COLOURS.length]!}" stroke-width="2"${dash}/>`);
    parts.push(`<text x="${legendX + 36}" y="${y + 4}">${escapeXml(s.label)}</text>`);
  });
  parts.push('</g>', '</svg>');
  return parts.join('\n');
}

/** The iteration-time summary of one log (MMDetection/MMSegmentation analyze_logs.py `cal_train_time`). */
export interface TrainTimeSummary {
  log: string;
  /** Logged train lines used (each line's `time` is the mean over its logging interval). */
  intervals: number;
  slowest: { iter: number; time: number };
  fastest: { iter: number; time: number };
  /** Population standard deviation of the interval times (numpy's default). */
  std: number;
  /** Mean of the interval times, seconds per iteration. */
  average: number;
}

/**
 * Seconds per iteration over a log's training lines. The first logged interval includes start-up (compilation,
 * first batches) and is left out unless `includeOutliers`, as the reference tool drops each epoch's first value.
 */
export function calTrainTime(log: string, options: { includeOutliers?: boolean; warn?: (message: string) => void } = {}): TrainTimeSummary {
  const [curve] = readLogCurves(log, ['time'], options.warn);
  const points = options.includeOutliers ? curve!.points : curve!.points.slice(1);
  if (points.length === 0) {
    throw new SegkitError(`${log}: only one logged training interval; its time includes start-up, so pass --include-outliers to use it`);
  }
  let slowest = points[0]!;
  let fastest = points[0]!;
  for (const p of points) {
    if (p.value > slowest.value) slowest = p;
    if (p.value < fastest.value) fastest = p;
  }
  const average = points.reduce((sum, p) => sum + p.value, 0) / points.length;
  const std = Math.sqrt(points.reduce((sum, p) => sum + (p.value - average) ** 2, 0) / points.length);
  return { log, intervals: points.length, slowest: { iter: slowest.iter, time: slowest.value }, fastest: { iter: fastest.iter, time: fastest.value }, std, average };
}

/** The summary as the reference prints it. */
export function formatTrainTime(summary: TrainTimeSummary): string {
  return [
    `-----Analyze train time of ${summary.log}-----`,
    `slowest interval ending at iter ${summary.slowest.iter}, average time is ${summary.slowest.time.toFixed(4)} s/iter`,
    `fastest interval ending at iter ${summary.fastest.iter}, average time is ${summary.fastest.time.toFixed(4)} s/iter`,
    `time std over intervals is ${summary.std.toFixed(4)}`,
    `average iter time: ${summary.average.toFixed(4)} s/iter`,
  ].join('\n');
}
