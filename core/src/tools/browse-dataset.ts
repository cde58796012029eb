import * as fs from 'fs';
import * as path from 'path';
import type { Dataset, NdArray, PipelineResults } from '../components';
import { SegkitError } from '../errors';
import { readImage, svgToPng, writePng } from '../io/image';
import { renderOverlay } from './overlay';
import { escapeXml } from './plot';

/** Normalize's settings as the pipeline records them (`img_norm_cfg`). */
export interface ImageNormConfig {
  mean: readonly number[];
  std: readonly number[];
  to_rgb: boolean;
}

/** LoadImageFromFile's neutral record: BGR pixel values as loaded. */
const UNNORMALIZED: ImageNormConfig = { mean: [0, 0, 0], std: [1, 1, 1], to_rgb: false };

/**
 * Undoes Normalize (`x·std + mean`, rounded and clamped to 0..255) and returns RGB for display: the pipeline's
 * image is RGB after Normalize with `to_rgb`, BGR (OpenCV's order) otherwise.
 */
export function denormalizeImage(img: NdArray, norm: ImageNormConfig = UNNORMALIZED): NdArray<Uint8Array> {
  const [height, width, channels] = img.shape;
  if (img.shape.length !== 3 || channels !== 3) throw new SegkitError(`browse-dataset: expected the pipeline's image as [H, W, 3], got [${img.shape.join(', ')}]`);
  const out = new Uint8Array(height! * width! * 3);
  for (let p = 0; p < height! * width!; p++) {
    for (let c = 0; c < 3; c++) {
      // Output channel c (RGB) comes from input channel c when the image is RGB, 2 − c when BGR.
      const source = norm.to_rgb ? c : 2 - c;
      const value = img.data[p * 3 + source]! * norm.std[source]! + norm.mean[source]!;
      out[p * 3 + c] = Math.max(0, Math.min(255, Math.round(value)));
    }
  }
  return { data: out, shape: [height!, width!, 3] };
}

/** Nearest-neighbour enlargement by an integer factor (keeps every pixel's exact colour). */
export function zoomImage(image: NdArray<Uint8Array>, factor: number): NdArray<Uint8Array> {
  if (factor === 1) return image;
  const [height, width] = image.shape as [number, number, number];
  const out = new Uint8Array(height * factor * width * factor * 3);
  for (let y = 0; y < height * factor; y++) {
    for (let x = 0; x < width * factor; x++) {
      const from = (Math.floor(y / factor) * width + Math.floor(x / factor)) * 3;
      out.set(image.data.subarray(from, from + 3), (y * width * factor + x) * 3);
    }
  }
  return { data: out, shape: [height * factor, width * factor, 3] };
}

/** Nearest-neighbour resize of a label map (a ground truth at original size onto a resized test image). */
function resizeLabels(labels: NdArray, height: number, width: number): NdArray<Int32Array> {
  const [srcHeight, srcWidth] = labels.shape as [number, number];
  const out = new Int32Array(height * width);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(srcHeight - 1, Math.floor(((y + 0.5) * srcHeight) / height));
    for (let x = 0; x < width; x++) out[y * width + x] = labels.data[sy * srcWidth + Math.min(srcWidth - 1, Math.floor(((x + 0.5) * srcWidth) / width))]!;
  }
  return { data: out, shape: [height, width] };
}

/** The legend panel as SVG: one swatch and name per class, in class order. */
export function renderLegendSvg(classes: readonly string[], palette: readonly (readonly number[])[], height: number): { svg: string; width: number; height: number } {
  const row = 20;
  const width = 44 + 7 * Math.max(6, ...classes.map((c) => c.length));
  const panelHeight = Math.max(height, 12 + row * classes.length);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${panelHeight}" viewBox="0 0 ${width} ${panelHeight}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${panelHeight}" fill="#ffffff"/>`,
  ];
  classes.forEach((name, i) => {
    const [r, g, b] = palette[i] ?? [0, 0, 0];
    const y = 8 + i * row;
    parts.push(`<rect x="10" y="${y}" width="16" height="14" fill="rgb(${r},${g},${b})" stroke="#444444" stroke-width="0.5"/>`);
    parts.push(`<text x="34" y="${y + 11}">${escapeXml(name)}</text>`);
  });
  parts.push('</svg>');
  return { svg: parts.join('\n'), width, height: panelHeight };
}

/** The overlay on the left, the legend to its right, on a white canvas. */
async function withLegend(overlay: NdArray<Uint8Array>, classes: readonly string[], palette: readonly (readonly number[])[]): Promise<NdArray<Uint8Array>> {
  const [height, width] = overlay.shape as [number, number, number];
  const legend = renderLegendSvg(classes, palette, height);
  const legendPixels = await readImage(await svgToPng(legend.svg), { order: 'rgb', name: 'the legend' });
  const canvasHeight = Math.max(height, legend.height);
  const canvasWidth = width + legend.width;
  const canvas = new Uint8Array(canvasHeight * canvasWidth * 3).fill(255);
  for (let y = 0; y < height; y++) canvas.set(overlay.data.subarray(y * width * 3, (y + 1) * width * 3), y * canvasWidth * 3);
  for (let y = 0; y < legend.height; y++) canvas.set(legendPixels.data.subarray(y * legend.width * 3, (y + 1) * legend.width * 3), (y * canvasWidth + width) * 3);
  return { data: canvas, shape: [canvasHeight, canvasWidth, 3] };
}

/** MultiScaleFlipAug may wrap results in lists: the first augmentation. */
function first<T>(value: T | T[] | undefined): T | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export interface BrowseSample {
  /** The displayed image: the pipeline's output, un-normalized, RGB. */
  image: NdArray<Uint8Array>;
  /** Labels at the image's size (255 and other values without a colour are not drawn). */
  labels: NdArray;
  filename: string;
}

/** What the model is fed for sample `index` of `dataset` (its pipeline applied with `random`), ready to draw. */
export async function browseSample(dataset: Dataset, index: number, random: Parameters<Dataset['get']>[1]): Promise<BrowseSample> {
  const sample: PipelineResults = await dataset.get(index, random);
  const metas = (sample.img_metas ?? {}) as Record<string, unknown>;
  const img = first(sample.img as NdArray | NdArray[] | undefined);
  if (!img) throw new SegkitError(`browse-dataset: sample ${index} has no 'img' after the pipeline (is Collect missing 'img'?)`);
  const norm = (first(metas.img_norm_cfg as ImageNormConfig | undefined) ?? sample.img_norm_cfg ?? UNNORMALIZED) as ImageNormConfig;
  const image = denormalizeImage(img, norm);
  const [height, width] = image.shape as [number, number];
  let labels = sample.gt_semantic_seg as NdArray | undefined;
  if (!labels) {
    // A test pipeline loads no annotations: the ground truth at original size, resized onto the image (without padding).
    const recorded = (metas.img_shape ?? sample.img_shape ?? image.shape) as number[] | number[][];
    const imgShape = (Array.isArray(recorded[0]) ? recorded[0] : recorded) as number[];
    const truth = resizeLabels(await dataset.getGroundTruth(index), imgShape[0]!, imgShape[1]!);
    const padded = new Int32Array(height * width).fill(255);
    for (let y = 0; y < Math.min(height, imgShape[0]!); y++) {
      for (let x = 0; x < Math.min(width, imgShape[1]!); x++) padded[y * width + x] = truth.data[y * imgShape[1]! + x]!;
    }
    labels = { data: padded, shape: [height, width] };
  }
  if (labels.shape[0] !== height || labels.shape[1] !== width) {
    throw new SegkitError(`browse-dataset: sample ${index}: label [${labels.shape.join(', ')}] and image [${image.shape.join(', ')}] differ in size`);
  }
  const filename = String(metas.filename ?? sample.filename ?? `sample_${index}`);
  return { image, labels, filename };
}

export interface BrowseOptions {
  outDir: string;
  count: number;
  random: Parameters<Dataset['get']>[1];
  /** Label colour weight, as `test --show-dir` (default 0.5). */
  opacity?: number;
  /** Integer nearest-neighbour enlargement of the image (default 1). */
  zoom?: number;
  /** Called after each written file. */
  onWritten?(file: string): void;
}

/** Writes `count` samples (the first ones) with their labels overlaid and a legend; returns the files. */
export async function browseDataset(dataset: Dataset, options: BrowseOptions): Promise<string[]> {
  const zoom = options.zoom ?? 1;
  const opacity = options.opacity ?? 0.5;
  fs.mkdirSync(options.outDir, { recursive: true });
  const written: string[] = [];
  const count = Math.min(options.count, dataset.length);
  const digits = String(count - 1).length;
  for (let index = 0; index < count; index++) {
    const { image, labels, filename } = await browseSample(dataset, index, options.random);
    const overlay = renderOverlay(image, labels.data as Int32Array, dataset.palette, opacity);
    const picture = await withLegend(zoomImage(overlay, zoom), dataset.classes, dataset.palette);
    const stem = path.basename(filename).replace(/\.[^.]+$/, '');
    const file = path.join(options.outDir, `${String(index).padStart(digits, '0')}_${stem}.png`);
    writePng(file, picture);
    written.push(file);
    options.onWritten?.(file);
  }
  return written;
}
