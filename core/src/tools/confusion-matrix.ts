import { SegkitError } from '../errors';
import { testSegmentor, type SegmentorHandle } from '../apis/segmentor';
import { escapeXml } from './plot';

/**
 * Pixel counts per (ground truth, prediction) pair, as MMSegmentation's tools/confusion_matrix.py
 * `calculate_confusion_matrix`: rows are ground-truth classes, columns predicted classes; ground-truth pixels
 * equal to the ignore index are dropped.
 */
export class ConfusionMatrix {
  /** Row-major counts, `numClasses × numClasses`. */
  readonly counts: Float64Array;

  constructor(readonly numClasses: number, readonly ignoreIndex: number) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new SegkitError(`confusion matrix: expected a positive number of classes, got ${numClasses}`);
    this.counts = new Float64Array(numClasses * numClasses);
  }

  /** Adds one image; `where` names it in errors (a label outside the classes is a dataset or config mistake). */
  add(prediction: ArrayLike<number>, truth: ArrayLike<number>, where = 'image'): void {
    if (prediction.length !== truth.length) throw new SegkitError(`${where}: prediction has ${prediction.length} pixels, ground truth ${truth.length}`);
    const n = this.numClasses;
    for (let i = 0; i < truth.length; i++) {
      const gt = truth[i]!;
      if (gt === this.ignoreIndex) continue;
      const pred = prediction[i]!;
      if (gt < 0 || gt >= n) {
        throw new SegkitError(`${where}: ground-truth label ${gt} is outside [0, ${n}) and is not the ignore index ${this.ignoreIndex}; check the dataset's classes and reduce_zero_label`);
      }
      if (pred < 0 || pred >= n) throw new SegkitError(`${where}: predicted label ${pred} is outside [0, ${n}); the model's num_classes does not match the dataset's ${n} classes`);
      this.counts[gt * n + pred]! += 1;
    }
  }

  /** Row i as percentages of the ground-truth pixels of class i (NaN for a class with no pixels), as the tool plots it. */
  normalized(): Float64Array {
    const n = this.numClasses;
    const out = new Float64Array(n * n);
    for (let row = 0; row < n; row++) {
      let sum = 0;
      for (let col = 0; col < n; col++) sum += this.counts[row * n + col]!;
      for (let col = 0; col < n; col++) out[row * n + col] = (this.counts[row * n + col]! / sum) * 100;
    }
    return out;
  }
}

/**
 * The confusion matrix of a model over its config's test split (`testSegmentor`, so the same pipeline, test_cfg
 * and ground truth as `segkit test`), with the dataset's class names.
 */
export async function confusionMatrixOfTestSplit(handle: SegmentorHandle): Promise<{ matrix: ConfusionMatrix; classNames: readonly string[] }> {
  let matrix: ConfusionMatrix | undefined;
  let classNames: readonly string[] = [];
  await testSegmentor(handle, {
    onPrediction: async (index, prediction, sample, dataset) => {
      if (!matrix) {
        classNames = dataset.classes;
        if (handle.model.numClasses !== classNames.length && !(handle.model.numClasses === 1 && classNames.length === 2)) {
          throw new SegkitError(`model.decode_head.num_classes is ${handle.model.numClasses} but the test dataset has ${classNames.length} classes`);
        }
        matrix = new ConfusionMatrix(classNames.length, dataset.ignoreIndex);
      }
      const truth = await dataset.getGroundTruth(index);
      matrix.add(prediction.data, truth.data, `sample ${index} (${String(sample.filename ?? '?')})`);
    },
  });
  if (!matrix) throw new SegkitError('confusion-matrix: the test dataset has no images');
  return { matrix, classNames };
}

/** Quotes a CSV field when it needs it (RFC 4180). */
function csvField(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * The matrix as CSV: a header `ground truth \ prediction,<class>...`, then one row per ground-truth class.
 * Counts are integers; percentages have 4 decimals; a class without ground-truth pixels gives empty cells.
 */
export function confusionMatrixCsv(values: Float64Array, classNames: readonly string[], options: { percentages: boolean }): string {
  const n = classNames.length;
  if (values.length !== n * n) throw new SegkitError(`confusion matrix: ${values.length} values for ${n} classes`);
  const lines = [['ground truth \\ prediction', ...classNames].map(csvField).join(',')];
  for (let row = 0; row < n; row++) {
    const cells = Array.from(values.subarray(row * n, row * n + n), (v) => (Number.isNaN(v) ? '' : options.percentages ? v.toFixed(4) : String(v)));
    lines.push([csvField(classNames[row]!), ...cells].join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** matplotlib's 'winter' colour map (the default of confusion_matrix.py): blue (0) to green (1). */
export function winterColour(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t));
  return [0, Math.round(255 * x), Math.round(255 * (1 - 0.5 * x))];
}

const hex = (rgb: readonly number[]): string => `#${rgb.map((v) => v.toString(16).padStart(2, '0')).join('')}`;

export interface ConfusionSvgOptions {
  title?: string;
  /** Side of one cell in pixels (default: 46, larger for fewer than 8 classes; 19 classes give a ~1100 px wide image). */
  cellSize?: number;
}

/**
 * The normalized confusion matrix as SVG (confusion_matrix.py's `plot_confusion_matrix`): 'winter' cells with
 * their percentage, class names on both axes (prediction names slanted), axis titles and a 0–100 % colour bar.
 */
export function renderConfusionMatrixSvg(percentages: Float64Array, classNames: readonly string[], options: ConfusionSvgOptions = {}): string {
  const n = classNames.length;
  if (percentages.length !== n * n) throw new SegkitError(`confusion matrix: ${percentages.length} values for ${n} classes`);
  const cell = options.cellSize ?? Math.max(46, Math.floor(360 / n));
  const title = options.title ?? 'Normalized Confusion Matrix';
  const charWidth = 7; // ~ DejaVu Sans at 12 px
  const longest = Math.max(...classNames.map((c) => c.length));
  const nameSpace = 16 + charWidth * longest;
  const left = 40 + nameSpace;
  const top = 56;
  const grid = n * cell;
  // Slanted names at 45° need about 0.71 × their length below the grid.
  const bottom = 56 + Math.ceil(0.71 * charWidth * longest);
  const barX = left + grid + 28;
  const barWidth = 22;
  const width = barX + barWidth + 60;
  const height = top + grid + bottom;
  const f = (v: number): string => v.toFixed(2);
  const fontSize = Math.max(8, Math.min(16, Math.floor(cell / 4.2)));

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${f(left + grid / 2)}" y="30" text-anchor="middle" font-size="16">${escapeXml(title)}</text>`,
    '<g class="cells">',
  ];
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < n; col++) {
      const value = percentages[row * n + col]!;
      const x = left + col * cell;
      const y = top + row * cell;
      const missing = Number.isNaN(value);
      const colour = missing ? [255, 255, 255] : winterColour(value / 100);
      parts.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${hex(colour)}" stroke="#ffffff" stroke-width="0.5"/>`);
      // Dark text on the bright (green) end of the map, white on the blue end.
      const luminance = 0.2126 * colour[0]! + 0.7152 * colour[1]! + 0.0722 * colour[2]!;
      const text = missing ? '–' : value.toFixed(value >= 99.995 ? 0 : 1);
      parts.push(
        `<text x="${f(x + cell / 2)}" y="${f(y + cell / 2 + fontSize / 3)}" text-anchor="middle" font-size="${fontSize}" fill="${luminance > 140 ? '#000000' : '#ffffff'}">${text}</text>`,
      );
    }
  }
  parts.push('</g>');
  parts.push(`<rect class="frame" x="${left}" y="${top}" width="${grid}" height="${grid}" fill="none" stroke="#000000"/>`);

  parts.push('<g class="class-names">');
  classNames.forEach((name, i) => {
    parts.push(`<text x="${left - 8}" y="${f(top + i * cell + cell / 2 + 4)}" text-anchor="end">${escapeXml(name)}</text>`);
    const x = f(left + i * cell + cell / 2 + 4);
    const y = top + grid + 12;
    parts.push(`<text x="${x}" y="${y}" text-anchor="end" transform="rotate(-45 ${x} ${y})">${escapeXml(name)}</text>`);
  });
  parts.push('</g>');
  parts.push(`<text x="${f(left + grid / 2)}" y="${height - 12}" text-anchor="middle" font-size="14">Prediction Label</text>`);
  const yMid = f(top + grid / 2);
  parts.push(`<text x="18" y="${yMid}" text-anchor="middle" font-size="14" transform="rotate(-90 18 ${yMid})">Ground Truth Label</text>`);

  // Colour bar: 50 bands from 100 % (top) to 0 % (bottom), ticks every 20 %.
  const bands = 50;
  parts.push('<g class="colour-bar">');
  for (let k = 0; k < bands; k++) {
    const y = top + (k * grid) / bands;
    parts.push(`<rect x="${barX}" y="${f(y)}" width="${barWidth}" height="${f(grid / bands + 0.5)}" fill="${hex(winterColour(1 - (k + 0.5) / bands))}"/>`);
  }
  parts.push(`<rect x="${barX}" y="${top}" width="${barWidth}" height="${grid}" fill="none" stroke="#000000"/>`);
  for (let tick = 0; tick <= 100; tick += 20) {
    const y = top + grid - (tick / 100) * grid;
    parts.push(`<line x1="${barX + barWidth}" y1="${f(y)}" x2="${barX + barWidth + 5}" y2="${f(y)}" stroke="#000000"/>`);
    parts.push(`<text x="${barX + barWidth + 8}" y="${f(y + 4)}">${tick}%</text>`);
  }
  parts.push('</g>', '</svg>');
  return parts.join('\n');
}
