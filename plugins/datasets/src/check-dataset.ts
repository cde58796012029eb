import { SegkitError, prettyTable, type Dataset, type NdArray } from '@segkit/core';
import type { RepeatDataset } from './builtin';
import type { CustomDataset } from './custom';
import { badLabelValues, labelValueCounts } from './label-check';

/** The kinds of problem `checkDataset` reports, in the order of its summary table. */
export const DATASET_PROBLEM_KINDS = ['image-unreadable', 'label-unreadable', 'size-mismatch', 'label-values'] as const;
export type DatasetProblemKind = (typeof DATASET_PROBLEM_KINDS)[number];

const PROBLEM_TITLES: Record<DatasetProblemKind, string> = {
  'image-unreadable': 'image cannot be read',
  'label-unreadable': 'label map cannot be read',
  'size-mismatch': 'label size differs from image',
  'label-values': 'label values out of range',
};

export interface DatasetProblem {
  kind: DatasetProblemKind;
  /** Sample index in the scanned dataset (a RepeatDataset's inner dataset). */
  index: number;
  image: string;
  label: string | null;
  message: string;
}

export interface CheckDatasetOptions {
  /** Called after every sample: samples done, samples in all, and the image just checked. */
  onProgress?: (done: number, total: number, image: string) => void;
  /** How many problems to keep with their file names (all are counted); default 20. */
  maxProblems?: number;
  /** Samples decoded at the same time; default 4. */
  concurrency?: number;
}

export interface DatasetCheckSummary {
  /** Samples scanned (a RepeatDataset counts each file once). */
  samples: number;
  /** Samples with a label map (0 without ann_dir). */
  labelled: number;
  classes: readonly string[];
  ignoreIndex: number;
  /** Whether the checked labels went through reduce_zero_label (as training loads them). */
  reduceZeroLabel: boolean;
  /** Samples with each kind of problem (a sample has at most one problem of a kind). */
  problemCounts: Record<DatasetProblemKind, number>;
  /** All problems found, and the samples that have at least one. */
  totalProblems: number;
  samplesWithProblems: number;
  /** The first `maxProblems` problems in sample order, with file names. */
  problems: DatasetProblem[];
  /** Pixels of each class over every readable label map (index = class). */
  classPixels: number[];
  /** Pixels equal to the ignore index. */
  ignoredPixels: number;
  /** Pixels of each value that is neither a class nor the ignore index, over the whole dataset. */
  badValuePixels: Record<number, number>;
  /** Pixels of every label value over the whole dataset (the only counts when the dataset has no class names). */
  valuePixels: Record<number, number>;
  /** True when no problem was found. */
  ok: boolean;
}

/**
 * What `checkDataset` needs of a dataset: its files, their loaders, and the label checks. `CustomDataset`
 * (and so every dataset type of this plugin) has it; another plugin's dataset may implement it too.
 */
export type CheckableDataset = Pick<
  CustomDataset,
  'length' | 'classes' | 'ignoreIndex' | 'labelRange' | 'labelsReduceZero' | 'sampleFiles' | 'loadImage' | 'loadLabel' | 'describeSizeMismatch' | 'describeBadLabel'
>;

function isCheckable(dataset: Dataset): dataset is Dataset & CheckableDataset {
  const candidate = dataset as Partial<Record<keyof CheckableDataset, unknown>>;
  return ['sampleFiles', 'loadImage', 'loadLabel', 'describeSizeMismatch', 'describeBadLabel'].every((method) => typeof candidate[method as keyof CheckableDataset] === 'function');
}

/**
 * The file-based dataset under any RepeatDatasets (its files are what there is to check). Duck-typed rather
 * than `instanceof`, so that it works when the CLI and the kernel load this package from different folders.
 */
function fileDataset(dataset: Dataset): CheckableDataset {
  let inner: Dataset = dataset;
  while (!isCheckable(inner) && inner instanceof Object && 'dataset' in inner && 'times' in inner) inner = (inner as RepeatDataset).dataset;
  if (!isCheckable(inner)) {
    throw new SegkitError(`checkDataset: expected a CustomDataset-based dataset (images and label maps in folders), got ${inner.constructor?.name ?? typeof inner}`);
  }
  return inner;
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Scans a whole dataset up front, as `segkit check-dataset` does: every image and label map is decoded,
 * label sizes are compared with their images, label values (as training loads them: the pipeline's
 * reduce_zero_label and the dataset's label_map) are checked against the classes and the ignore index,
 * and pixels are counted per class. Problems are collected, not thrown.
 */
export async function checkDataset(dataset: Dataset, options: CheckDatasetOptions = {}): Promise<DatasetCheckSummary> {
  const files = fileDataset(dataset);
  const maxProblems = options.maxProblems ?? 20;
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
  const range = files.labelRange;
  const numClasses = files.classes.length;
  const total = files.length;
  const problemsBySample: DatasetProblem[][] = Array.from({ length: total }, () => []);
  const classPixels = new Array<number>(numClasses).fill(0);
  const badValuePixels: Record<number, number> = {};
  const valuePixels: Record<number, number> = {};
  let ignoredPixels = 0;
  let labelled = 0;
  let done = 0;

  async function checkSample(index: number): Promise<void> {
    const { image, label } = files.sampleFiles(index);
    const problem = (kind: DatasetProblemKind, message: string) => problemsBySample[index]!.push({ kind, index, image, label, message });
    let decoded: NdArray | null = null;
    try {
      decoded = await files.loadImage(index);
    } catch (error) {
      problem('image-unreadable', messageOf(error));
    }
    if (label !== null) {
      labelled++;
      let labelMap: NdArray | null = null;
      try {
        labelMap = await files.loadLabel(index);
      } catch (error) {
        problem('label-unreadable', messageOf(error));
      }
      if (labelMap) {
        const mismatch = decoded ? files.describeSizeMismatch(index, labelMap.shape, decoded.shape) : null;
        if (mismatch) problem('size-mismatch', mismatch);
        const counts = labelValueCounts(labelMap.data);
        for (const [value, pixels] of counts) {
          valuePixels[value] = (valuePixels[value] ?? 0) + pixels;
          if (value === files.ignoreIndex) ignoredPixels += pixels;
          else if (Number.isInteger(value) && value >= 0 && value < numClasses) classPixels[value]! += pixels;
        }
        if (range) {
          const bad = badLabelValues(counts, range);
          for (const { value, pixels } of bad) badValuePixels[value] = (badValuePixels[value] ?? 0) + pixels;
          if (bad.length > 0) problem('label-values', files.describeBadLabel(label, bad, range));
        }
      }
    }
    done++;
    options.onProgress?.(done, total, image);
  }

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) await checkSample(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));

  const all = problemsBySample.flat();
  const problemCounts = Object.fromEntries(DATASET_PROBLEM_KINDS.map((kind) => [kind, all.filter((p) => p.kind === kind).length])) as Record<DatasetProblemKind, number>;
  return {
    samples: total,
    labelled,
    classes: files.classes,
    ignoreIndex: files.ignoreIndex,
    reduceZeroLabel: files.labelsReduceZero,
    problemCounts,
    totalProblems: all.length,
    samplesWithProblems: problemsBySample.filter((p) => p.length > 0).length,
    problems: all.slice(0, maxProblems),
    classPixels,
    ignoredPixels,
    badValuePixels,
    valuePixels,
    ok: all.length === 0,
  };
}

/** The summary as text: a table of problem counts, the first problems, and a table of pixels per class (or per value). */
export function formatDatasetCheck(summary: DatasetCheckSummary): string {
  const plural = (n: number, word: string, words = `${word}s`) => `${n} ${n === 1 ? word : words}`;
  const lines: string[] = [];
  const labels = summary.labelled === summary.samples ? 'all with label maps' : `${summary.labelled} with label maps`;
  const classes = summary.classes.length > 0 ? plural(summary.classes.length, 'class', 'classes') : 'no class names (values not checked)';
  const reduce = summary.reduceZeroLabel ? ', labels after reduce_zero_label' : '';
  lines.push(`checked ${plural(summary.samples, 'sample')} (${labels}); ${classes}, ignore index ${summary.ignoreIndex}${reduce}`);
  lines.push(prettyTable(['problem', 'samples'], DATASET_PROBLEM_KINDS.map((kind) => [PROBLEM_TITLES[kind], String(summary.problemCounts[kind])])));
  if (summary.problems.length > 0) {
    const shown = summary.problems.length < summary.totalProblems ? `first ${summary.problems.length} of ${summary.totalProblems}` : 'all';
    lines.push(`problems (${shown}):`);
    for (const p of summary.problems) lines.push(`  [${p.index}] ${PROBLEM_TITLES[p.kind]}: ${p.message}`);
  }
  const labelledPixels = Object.values(summary.valuePixels).reduce((a, b) => a + b, 0);
  if (labelledPixels > 0) {
    const share = (pixels: number) => `${((100 * pixels) / labelledPixels).toFixed(2)}%`;
    let rows: string[][];
    if (summary.classes.length > 0) {
      rows = summary.classes.map((name, c) => [String(c), name, String(summary.classPixels[c] ?? 0), share(summary.classPixels[c] ?? 0)]);
      rows.push([String(summary.ignoreIndex), '(ignored)', String(summary.ignoredPixels), share(summary.ignoredPixels)]);
      for (const [value, pixels] of Object.entries(summary.badValuePixels)) rows.push([value, '(out of range)', String(pixels), share(pixels)]);
    } else {
      rows = Object.entries(summary.valuePixels).map(([value, pixels]) => [value, Number(value) === summary.ignoreIndex ? '(ignored)' : '', String(pixels), share(pixels)]);
    }
    lines.push(prettyTable(['value', 'class', 'pixels', 'share'], rows));
  }
  lines.push(summary.ok ? 'no problems found' : `${plural(summary.totalProblems, 'problem')} in ${plural(summary.samplesWithProblems, 'sample')}`);
  return lines.join('\n');
}
