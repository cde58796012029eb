import * as fs from 'fs';
import * as path from 'path';
import { SegkitError, nearestName } from '../errors';
import { svgToPng } from '../io/image';
import { makeDirectory, writeFileOrExplain } from '../os-errors';

/** One line of the plot: a log key's values against iteration. */
export interface CurveSeries {
  key: string;
  points: { iter: number; value: number }[];
}

export interface PlotOptions {
  /** Log keys to draw, one line each (e.g. `decode.loss_ce`, `loss`, `mIoU`). */
  keys: string[];
  /** Output file: `.svg`, or `.png` (rendered with sharp). */
  out: string;
  title?: string;
  /** Image size in pixels. */
  width?: number;
  height?: number;
  /** Where to report a skipped truncated last line (default: stderr, as the CLI's warnings). */
  warn?: (message: string) => void;
}

const warnOnStderr = (message: string): void => console.warn(`warning: ${message}`);

/** Keys of a log line that are not values to plot. */
const NON_VALUE_KEYS = new Set(['mode', 'iter', 'epoch']);

/** matplotlib's tab10 colours, so curves look like MMSegmentation's analyze_logs plots. */
export const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** Series with at most this many points get a marker at every point (eval metrics are sparse). */
const MARKER_MAX_POINTS = 30;

/**
 * Reads a JSON-lines training log and extracts one series per key. Lines without `mode` (the env/config
 * header) are skipped; a key is taken from every data line where it is a finite number. A last line that is
 * not valid JSON (a run killed while writing it) is skipped with one warning; any other bad line is an error.
 */
export function readLogCurves(logFile: string, keys: readonly string[], warn: (message: string) => void = warnOnStderr): CurveSeries[] {
  if (!fs.existsSync(logFile)) throw new SegkitError(`${logFile}: no such log file`);
  const dataLines: Record<string, unknown>[] = [];
  const texts = fs.readFileSync(logFile, 'utf8').split('\n');
  let lastLineIndex = texts.length - 1;
  while (lastLineIndex >= 0 && texts[lastLineIndex]!.trim() === '') lastLineIndex--;
  texts.forEach((text, index) => {
    if (text.trim() === '') return;
    let line: unknown;
    try {
      line = JSON.parse(text);
    } catch {
      const excerpt = JSON.stringify(text.slice(0, 60));
      if (index === lastLineIndex) {
        warn(`${logFile}:${index + 1}: skipped the last line, which is cut off (the run was probably stopped while writing it): ${excerpt}`);
        return;
      }
      throw new SegkitError(`${logFile}:${index + 1}: expected one JSON object per line, got ${excerpt}`);
    }
    if (line && typeof line === 'object' && !Array.isArray(line) && 'mode' in line) dataLines.push(line as Record<string, unknown>);
  });
  if (dataLines.length === 0) throw new SegkitError(`${logFile}: no training or evaluation lines (JSON objects with a "mode") in the log`);

  const available = new Set<string>();
  for (const line of dataLines) {
    for (const [key, value] of Object.entries(line)) if (!NON_VALUE_KEYS.has(key) && typeof value === 'number') available.add(key);
  }
  return keys.map((key) => {
    if (!available.has(key)) {
      const nearest = nearestName(key, [...available]);
      throw new SegkitError(
        `${logFile}: key "${key}" is in no log line${nearest ? ` (did you mean "${nearest}"?)` : ''}; available keys: ${[...available].join(', ')}`,
      );
    }
    const points: CurveSeries['points'] = [];
    for (const line of dataLines) {
      const value = line[key];
      const iter = line.iter;
      if (typeof value === 'number' && Number.isFinite(value) && typeof iter === 'number') points.push({ iter, value });
    }
    return { key, points };
  });
}

/** Draws `keys` of a JSON-lines log against iteration (like MMSegmentation's tools/analyze_logs.py) as SVG or PNG. */
export async function plotLogCurves(logFile: string, options: PlotOptions): Promise<string> {
  const format = path.extname(options.out).toLowerCase();
  if (format !== '.svg' && format !== '.png') throw new SegkitError(`${options.out}: expected an output file ending in .svg or .png`);
  const series = readLogCurves(logFile, options.keys, options.warn);
  const svg = renderCurvesSvg(series, { title: options.title, width: options.width, height: options.height });
  makeDirectory(path.dirname(path.resolve(options.out)), '--out');
  writeFileOrExplain(options.out, format === '.svg' ? svg : await svgToPng(svg), '--out');
  return options.out;
}

export interface SvgOptions {
  title?: string;
  width?: number;
  height?: number;
  xLabel?: string;
  yLabel?: string;
}

/** An SVG line chart: axes with ticks and labels, one polyline per series in distinct colours, a legend. */
export function renderCurvesSvg(series: readonly CurveSeries[], options: SvgOptions = {}): string {
  const width = options.width ?? 800;
  const height = options.height ?? 500;
  const title = options.title;
  const xLabel = options.xLabel ?? 'iter';
  const yLabel = options.yLabel ?? (series.length === 1 ? series[0]!.key : 'value');
  const margin = { left: 80, right: 24, top: title ? 44 : 20, bottom: 56 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  if (plotWidth < 40 || plotHeight < 40) throw new SegkitError(`plot: ${width}×${height} pixels is too small for a chart`);

  const all = series.flatMap((s) => s.points);
  if (all.length === 0) throw new SegkitError('plot: the selected keys have no numeric values with an iteration');
  const xAxis = niceAxis(Math.min(...all.map((p) => p.iter)), Math.max(...all.map((p) => p.iter)));
  const yAxis = niceAxis(Math.min(...all.map((p) => p.value)), Math.max(...all.map((p) => p.value)));
  const px = (x: number): number => margin.left + ((x - xAxis.min) / (xAxis.max - xAxis.min)) * plotWidth;
  const py = (y: number): number => margin.top + plotHeight - ((y - yAxis.min) / (yAxis.max - yAxis.min)) * plotHeight;
  const f = (v: number): string => v.toFixed(2);
  const bottom = margin.top + plotHeight;

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
  if (title) parts.push(`<text x="${f(width / 2)}" y="26" text-anchor="middle" font-size="16">${escapeXml(title)}</text>`);

  // Grid and ticks.
  parts.push('<g class="x-ticks" stroke="#e0e0e0">');
  for (const tick of xAxis.ticks) parts.push(`<line x1="${f(px(tick))}" y1="${margin.top}" x2="${f(px(tick))}" y2="${bottom}"/>`);
  for (const tick of yAxis.ticks) parts.push(`<line x1="${margin.left}" y1="${f(py(tick))}" x2="${margin.left + plotWidth}" y2="${f(py(tick))}"/>`);
  parts.push('</g>');
  parts.push('<g class="tick-labels" fill="#000000">');
  for (const tick of xAxis.ticks) {
    parts.push(`<line x1="${f(px(tick))}" y1="${bottom}" x2="${f(px(tick))}" y2="${bottom + 5}" stroke="#000000"/>`);
    parts.push(`<text x="${f(px(tick))}" y="${bottom + 18}" text-anchor="middle">${formatTick(tick, xAxis.step)}</text>`);
  }
  for (const tick of yAxis.ticks) {
    parts.push(`<line x1="${margin.left - 5}" y1="${f(py(tick))}" x2="${margin.left}" y2="${f(py(tick))}" stroke="#000000"/>`);
    parts.push(`<text x="${margin.left - 8}" y="${f(py(tick) + 4)}" text-anchor="end">${formatTick(tick, yAxis.step)}</text>`);
  }
  parts.push('</g>');
  parts.push(`<rect class="frame" x="${margin.left}" y="${margin.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#000000"/>`);
  parts.push(`<text x="${f(margin.left + plotWidth / 2)}" y="${height - 14}" text-anchor="middle" font-size="14">${escapeXml(xLabel)}</text>`);
  parts.push(
    `<text x="18" y="${f(margin.top + plotHeight / 2)}" text-anchor="middle" font-size="14" transform="rotate(-90 18 ${f(margin.top + plotHeight / 2)})">${escapeXml(yLabel)}</text>`,
  );

  // Curves.
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const points = s.points.map((p) => `${f(px(p.iter))},${f(py(p.value))}`).join(' ');
    parts.push(`<polyline data-key="${escapeXml(s.key)}" points="${points}" fill="none" stroke="${colour}" stroke-width="1.5" stroke-linejoin="round"/>`);
    if (s.points.length <= MARKER_MAX_POINTS) {
      for (const p of s.points) parts.push(`<circle cx="${f(px(p.iter))}" cy="${f(py(p.value))}" r="3" fill="${colour}"/>`);
    }
  });

  // Legend, top right inside the axes.
  const rowHeight = 18;
  const legendWidth = 40 + 7 * Math.max(...series.map((s) => s.key.length));
  const legendX = margin.left + plotWidth - legendWidth - 10;
  const legendY = margin.top + 10;
  parts.push(
    `<g class="legend"><rect x="${legendX}" y="${legendY}" width="${legendWidth}" height="${series.length * rowHeight + 8}" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`,
  );
  series.forEach((s, i) => {
    const y = legendY + 4 + rowHeight * i + rowHeight / 2;
    const colour = COLOURS[i % COLOURS.length]!;
    parts.push(`<line x1="${legendX + 8}" y1="${y}" x2="${legendX + 30}" y2="${y}" stroke="${colour}" stroke-width="2"/>`);
    parts.push(`<text x="${legendX + 36}" y="${y + 4}">${escapeXml(s.key)}</text>`);
  });
  parts.push('</g>', '</svg>');
  return parts.join('\n');
}

/** Axis range extended to "nice" round ticks (1, 2, 2.5, 5 × 10^k), about 6 of them. */
export function niceAxis(min: number, max: number): { min: number; max: number; step: number; ticks: number[] } {
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const rough = (max - min) / 6;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)!;
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let k = 0; lo + k * step <= hi + step * 1e-9; k++) ticks.push(lo + k * step);
  return { min: lo, max: hi, step, ticks };
}

export function formatTick(value: number, step: number): string {
  const exponent = Math.floor(Math.log10(step) + 1e-9);
  const mantissa = step / 10 ** exponent;
  // A 2.5 step needs one more decimal than its power of ten (0.25, 0.5, 0.75).
  const decimals = Math.min(20, Math.max(0, -exponent + (Math.abs(mantissa - 2.5) < 1e-9 ? 1 : 0)));
  return (Math.abs(value) < step * 1e-6 ? 0 : value).toFixed(decimals);
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
