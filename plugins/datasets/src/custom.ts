import * as fs from 'fs';
import * as path from 'path';
import {
  SegkitError,
  SeededRandom,
  buildPipeline,
  joinPath,
  z,
  type BuildContext,
  type ComponentOf,
  type Compose,
  type Dataset,
  type NdArray,
  type PipelineResults,
  type RandomSource,
  type Transform,
} from '@segkit/core';
import { resolveDataPath, scanFiles } from './paths';
import { badLabelValues, describeBadValues, labelValueCounts, type BadLabelValue, type LabelRange } from './label-check';

type Rgb = readonly [number, number, number];

export interface ImageInfo {
  /** Image path relative to img_dir. */
  filename: string;
  /** Label path relative to ann_dir (absent without ann_dir). */
  ann?: { seg_map: string };
}

const rgb = z.tuple([z.number().int().min(0).max(255), z.number().int().min(0).max(255), z.number().int().min(0).max(255)], {
  error: 'expected an [r, g, b] triple of integers 0-255',
});

/** CustomDataset's options (MMSegmentation 0.x names and defaults); subclasses change the suffix defaults. */
export function customDatasetSchema(defaults: { img_suffix: string; seg_map_suffix: string }) {
  return z.object({
    pipeline: z.array(z.record(z.string(), z.unknown()), { error: 'expected a list of transform configs' }).default([]),
    img_dir: z.string({ error: 'expected the image folder (relative to data_root)' }),
    img_suffix: z.string().default(defaults.img_suffix),
    ann_dir: z.string().nullable().default(null),
    seg_map_suffix: z.string().default(defaults.seg_map_suffix),
    split: z.string().nullable().default(null),
    data_root: z.string().nullable().default(null),
    test_mode: z.boolean().default(false),
    ignore_index: z.number().int().min(0).max(255).default(255),
    reduce_zero_label: z.boolean().default(false),
    classes: z.union([z.array(z.string()).min(1), z.string()]).nullable().default(null),
    palette: z.array(rgb).nullable().default(null),
    gt_seg_map_loader_cfg: z.record(z.string(), z.unknown()).nullable().default(null),
    file_client_args: z.record(z.string(), z.unknown()).default({ backend: 'disk' }),
  });
}

export type CustomDatasetOptions = z.infer<ReturnType<typeof customDatasetSchema>>;

/** What a dataset type fixes: its class names and palette (null for the generic CustomDataset). */
export interface DatasetMeta {
  type: string;
  classes: readonly string[] | null;
  palette: readonly Rgb[] | null;
}

/** MMSegmentation 0.x's default palette for classes without one: random colours from a fixed seed. */
function randomPalette(count: number): Rgb[] {
  const random = SeededRandom.fromSeed(42);
  return Array.from({ length: count }, () => [random.randint(0, 255), random.randint(0, 255), random.randint(0, 255)] as const);
}

function describeList(items: readonly string[], max = 3): string {
  return items.slice(0, max).join(', ') + (items.length > max ? `, ... (${items.length} in all)` : '');
}

/**
 * MMSegmentation's CustomDataset: images under `img_dir` with `img_suffix`, labels under `ann_dir` at the
 * same relative path with `seg_map_suffix` (or the stems listed in a `split` file). Samples are the
 * pipeline's results for each image.
 */
export class CustomDataset implements Dataset {
  readonly imgDir: string;
  readonly annDir: string | null;
  readonly imgInfos: readonly ImageInfo[];
  readonly classes: readonly string[];
  readonly palette: readonly Rgb[];
  readonly ignoreIndex: number;
  readonly reduceZeroLabel: boolean;
  /** old id → new id (255 = removed) when `classes` selects a subset of the dataset's classes. */
  readonly labelMap: Readonly<Record<string, number>> | null;
  readonly pipeline: Compose;
  /**
   * `reduce_zero_label` of the pipeline's LoadAnnotations step (what training labels go through), or null
   * when the pipeline loads no labels (test pipelines).
   */
  readonly pipelineReduceZeroLabel: boolean | null;
  private gtLoader: Transform | undefined;
  private imageLoader: Transform | undefined;
  private labelLoader: Transform | undefined;

  constructor(
    readonly options: CustomDatasetOptions,
    meta: DatasetMeta,
    private readonly ctx: BuildContext,
  ) {
    const at = (key: string) => joinPath(ctx.path, key);
    const root = options.data_root === null ? null : resolveDataPath(options.data_root, ctx.configDir);
    const under = (p: string) => (root && !path.isAbsolute(p) ? path.join(root, p) : resolveDataPath(p, ctx.configDir));
    this.imgDir = under(options.img_dir);
    this.annDir = options.ann_dir === null ? null : under(options.ann_dir);
    if (root && !fs.existsSync(root)) throw new SegkitError(`${at('data_root')}: data folder not found: ${root}`, at('data_root'));
    if (!fs.existsSync(this.imgDir)) throw new SegkitError(`${at('img_dir')}: image folder not found: ${this.imgDir}`, at('img_dir'));
    if (this.annDir !== null && !fs.existsSync(this.annDir)) throw new SegkitError(`${at('ann_dir')}: annotation folder not found: ${this.annDir}`, at('ann_dir'));
    this.ignoreIndex = options.ignore_index;
    this.reduceZeroLabel = options.reduce_zero_label;
    this.imgInfos = this.loadAnnotations(options.split === null ? null : under(options.split), at);
    ({ classes: this.classes, palette: this.palette, labelMap: this.labelMap } = this.classesAndPalette(meta, at));
    this.pipeline = buildPipeline(ctx, options.pipeline, 'pipeline');
    const loadAnnotations = this.pipelineStep('LoadAnnotations');
    this.pipelineReduceZeroLabel = loadAnnotations ? loadAnnotations.cfg.reduce_zero_label === true : null;
  }

  /** The first step of the pipeline config with this transform type, and its index. */
  private pipelineStep(type: string): { cfg: Record<string, unknown>; index: number } | null {
    const index = this.options.pipeline.findIndex((cfg) => cfg.type === type);
    return index < 0 ? null : { cfg: this.options.pipeline[index]!, index };
  }

  private loadAnnotations(splitFile: string | null, at: (key: string) => string): ImageInfo[] {
    const { img_suffix: imgSuffix, seg_map_suffix: segSuffix } = this.options;
    let infos: ImageInfo[];
    if (splitFile !== null) {
      if (!fs.existsSync(splitFile)) throw new SegkitError(`${at('split')}: split file not found: ${splitFile}`, at('split'));
      const stems = fs.readFileSync(splitFile, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
      infos = stems.map((stem) => ({ filename: stem + imgSuffix, ...(this.annDir !== null ? { ann: { seg_map: stem + segSuffix } } : {}) }));
      if (infos.length === 0) throw new SegkitError(`${at('split')}: split file ${splitFile} lists no images`, at('split'));
      const missing = infos.filter((info) => !fs.existsSync(path.join(this.imgDir, info.filename))).map((info) => path.join(this.imgDir, info.filename));
      if (missing.length) throw new SegkitError(`${at('split')}: images listed in ${splitFile} not found: ${describeList(missing)}`, at('split'));
    } else {
      const files = scanFiles(this.imgDir, imgSuffix);
      infos = files.map((file) => ({
        filename: file,
        ...(this.annDir !== null ? { ann: { seg_map: file.slice(0, file.length - imgSuffix.length) + segSuffix } } : {}),
      }));
      if (infos.length === 0) {
        throw new SegkitError(`${at('img_dir')}: no images ending in '${imgSuffix}' under ${this.imgDir} (check img_dir and img_suffix)`, at('img_dir'));
      }
    }
    if (this.annDir !== null) {
      const orphans = infos.filter((info) => !fs.existsSync(path.join(this.annDir!, info.ann!.seg_map)));
      if (orphans.length) {
        const pairs = orphans.map((info) => `${path.join(this.imgDir, info.filename)} (expected ${path.join(this.annDir!, info.ann!.seg_map)})`);
        throw new SegkitError(`${at('ann_dir')}: ${orphans.length} image(s) without a label map ending in '${segSuffix}': ${describeList(pairs, 2)}`, at('ann_dir'));
      }
    }
    return infos;
  }

  private classesAndPalette(meta: DatasetMeta, at: (key: string) => string) {
    let requested: string[] | null = null;
    const classesOption = this.options.classes;
    if (typeof classesOption === 'string') {
      const file = resolveDataPath(classesOption, this.ctx.configDir);
      if (!fs.existsSync(file)) throw new SegkitError(`${at('classes')}: class-name file not found: ${file}`, at('classes'));
      requested = fs.readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
    } else if (classesOption) {
      requested = [...classesOption];
    }
    let classes: readonly string[] = meta.classes ?? [];
    let palette: readonly Rgb[] = meta.palette ?? [];
    let labelMap: Record<string, number> | null = null;
    if (requested) {
      if (meta.classes) {
        const unknown = requested.filter((c) => !meta.classes!.includes(c));
        if (unknown.length) {
          throw new SegkitError(`${at('classes')}: ${unknown.map((c) => `'${c}'`).join(', ')} not among ${meta.type}'s classes (${meta.classes.join(', ')})`, at('classes'));
        }
        labelMap = {};
        meta.classes.forEach((name, oldId) => {
          const newId = requested!.indexOf(name);
          labelMap![oldId] = newId < 0 ? 255 : newId;
        });
        // The palette follows the kept classes in their new order.
        palette = requested.map((name) => (meta.palette ?? [])[meta.classes!.indexOf(name)]!).filter(Boolean);
      }
      classes = requested;
    }
    if (this.options.palette) {
      if (this.options.palette.length !== classes.length) {
        throw new SegkitError(`${at('palette')}: expected ${classes.length} colours (one per class), got ${this.options.palette.length}`, at('palette'));
      }
      palette = this.options.palette as Rgb[];
    } else if (palette.length !== classes.length) {
      palette = randomPalette(classes.length);
    }
    return { classes, palette, labelMap };
  }

  get length(): number {
    return this.imgInfos.length;
  }

  /** MMSegmentation's pre_pipeline: the dict a pipeline starts from. */
  initialResults(index: number): PipelineResults {
    const info = this.imgInfos[index];
    if (!info) throw new RangeError(`${this.ctx.path}: index ${index} out of range (dataset of ${this.length})`);
    return {
      img_info: { filename: info.filename, ...(info.ann ? { ann: { ...info.ann } } : {}) },
      ...(info.ann && !this.options.test_mode ? { ann_info: { ...info.ann } } : {}),
      seg_fields: [],
      img_prefix: this.imgDir,
      seg_prefix: this.annDir,
      ...(this.labelMap ? { label_map: { ...this.labelMap } } : {}),
    };
  }

  /**
   * The pipeline's results for sample i. Right after the step that loads the label map (before any crop),
   * its values are checked against the classes and its size against its image's (`checkLabelValues`, `checkLabelSize`).
   */
  async get(index: number, random: RandomSource = SeededRandom.fromSeed(index)): Promise<PipelineResults> {
    let results = this.initialResults(index);
    let valuesChecked = false;
    let sizeChecked = false;
    for (const transform of this.pipeline.transforms) {
      results = await transform.apply(results, random);
      const label = results.gt_semantic_seg;
      if (!label) continue;
      if (!valuesChecked) {
        this.checkLabelValues(index, label);
        valuesChecked = true;
      }
      if (!sizeChecked && results.img) {
        // ori_shape: the decoded image's size, even if a step between the two loaders resized the image.
        this.checkLabelSize(index, label, (results.ori_shape as number[] | undefined) ?? results.img.shape);
        sizeChecked = true;
      }
    }
    return results;
  }

  /** Image and label-map files of sample i (label null without ann_dir). */
  sampleFiles(index: number): { image: string; label: string | null } {
    const info = this.imgInfos[index];
    if (!info) throw new RangeError(`${this.ctx.path}: index ${index} out of range (dataset of ${this.length})`);
    return { image: path.join(this.imgDir, info.filename), label: info.ann && this.annDir !== null ? path.join(this.annDir, info.ann.seg_map) : null };
  }

  /** The values a label map may hold, or null when the dataset has no class names to count (CustomDataset without `classes`). */
  get labelRange(): LabelRange | null {
    return this.classes.length > 0 ? { numClasses: this.classes.length, ignoreIndex: this.ignoreIndex } : null;
  }

  /** Whether the labels training sees went through reduce_zero_label (the pipeline's step, else the dataset's option). */
  get labelsReduceZero(): boolean {
    return this.pipelineReduceZeroLabel ?? this.reduceZeroLabel;
  }

  /** Throws a SegkitError naming both files when sample i's label map is not the size of its image (`imageShape`, [H, W, ...]). */
  checkLabelSize(index: number, label: NdArray, imageShape: readonly number[]): void {
    const mismatch = this.describeSizeMismatch(index, label.shape, imageShape);
    if (mismatch) throw new SegkitError(`${this.ctx.path}: ${mismatch}`, this.ctx.path);
  }

  /** "label map X is h×w (h×w) but its image Y is H×W; …", or null when the sizes agree. */
  describeSizeMismatch(index: number, labelShape: readonly number[], imageShape: readonly number[]): string | null {
    const [labelHeight, labelWidth] = labelShape;
    const [imageHeight, imageWidth] = imageShape;
    if (labelHeight === imageHeight && labelWidth === imageWidth) return null;
    const files = this.sampleFiles(index);
    return `label map ${files.label ?? '(unnamed)'} is ${labelHeight}×${labelWidth} (h×w) but its image ${files.image} is ${imageHeight}×${imageWidth}; a label map must have its image's size`;
  }

  /**
   * Throws a SegkitError naming the label file and the bad values (with pixel counts) when sample i's label
   * map, as loaded (after reduce_zero_label and label_map), holds a value that is neither a class index nor
   * the ignore index. One pass over the pixels; nothing to check without class names.
   */
  checkLabelValues(index: number, label: NdArray): void {
    const range = this.labelRange;
    if (!range) return;
    const bad = badLabelValues(labelValueCounts(label.data), range);
    if (bad.length > 0) throw new SegkitError(`${this.ctx.path}: ${this.describeBadLabel(this.sampleFiles(index).label ?? '(unnamed)', bad, range)}`, this.ctx.path);
  }

  /** "label map X has values outside [0, C) that are not the ignore index I: …", saying what reduce_zero_label did. */
  describeBadLabel(labelFile: string, bad: readonly BadLabelValue[], range: LabelRange): string {
    const reduced = this.labelsReduceZero ? ' (after reduce_zero_label: 0 → 255, k → k − 1)' : '';
    const mismatch =
      this.pipelineReduceZeroLabel !== null && this.pipelineReduceZeroLabel !== this.reduceZeroLabel
        ? `; note that the dataset has reduce_zero_label: ${this.reduceZeroLabel} but the pipeline's LoadAnnotations has reduce_zero_label: ${this.pipelineReduceZeroLabel}`
        : '';
    return `label map ${labelFile} has values outside [0, ${range.numClasses}) that are not the ignore index ${range.ignoreIndex}${reduced}: ${describeBadValues(bad)}${mismatch}`;
  }

  /** Sample i's image as the pipeline's LoadImageFromFile step decodes it (that step's options, else the defaults). */
  async loadImage(index: number): Promise<NdArray> {
    if (!this.imageLoader) {
      const step = this.pipelineStep('LoadImageFromFile');
      this.imageLoader = this.ctx.build('transforms', step ? step.cfg : { type: 'LoadImageFromFile' }, step ? `pipeline.${step.index}` : 'pipeline');
    }
    return (await this.imageLoader.apply(this.initialResults(index), SeededRandom.fromSeed(index))).img!;
  }

  /**
   * Sample i's label map as training sees it: decoded by the pipeline's LoadAnnotations step (its
   * reduce_zero_label) with the dataset's label_map; a pipeline without that step (a test pipeline) gets the
   * ground truth as evaluation loads it.
   */
  async loadLabel(index: number): Promise<NdArray> {
    const step = this.pipelineStep('LoadAnnotations');
    if (!step) return this.getGroundTruth(index);
    const info = this.imgInfos[index];
    if (!info?.ann) throw new SegkitError(`${this.ctx.path}: no label map for sample ${index}: ann_dir is not set`);
    this.labelLoader ??= this.ctx.build('transforms', step.cfg, `pipeline.${step.index}`);
    const results = await this.labelLoader.apply({ ...this.initialResults(index), ann_info: { ...info.ann } }, SeededRandom.fromSeed(index));
    return results.gt_semantic_seg!;
  }

  async getGroundTruth(index: number): Promise<NdArray> {
    const info = this.imgInfos[index];
    if (!info?.ann) throw new SegkitError(`${this.ctx.path}: no ground truth for sample ${index}: ann_dir is not set`);
    this.gtLoader ??= this.ctx.build(
      'transforms',
      { type: 'LoadAnnotations', reduce_zero_label: this.reduceZeroLabel, ...(this.options.gt_seg_map_loader_cfg ?? {}) },
      'gt_seg_map_loader_cfg',
    );
    const results = await this.gtLoader.apply({ ...this.initialResults(index), ann_info: { ...info.ann } }, SeededRandom.fromSeed(index));
    return results.gt_semantic_seg!;
  }
}

/** A dataset type as a registry component: CustomDataset's schema with the type's suffix defaults, classes and palette. */
export function datasetDefinition(
  meta: DatasetMeta & { defaults: { img_suffix: string; seg_map_suffix: string }; description: string },
  schema: z.ZodObject = customDatasetSchema(meta.defaults),
): ComponentOf<'datasets', CustomDatasetOptions, Dataset> {
  return {
    type: meta.type,
    schema: schema as unknown as z.ZodType<CustomDatasetOptions>,
    description: meta.description,
    create: (options, ctx) => new CustomDataset(options, meta, ctx),
  };
}

export const CustomDatasetDefinition = datasetDefinition({
  type: 'CustomDataset',
  classes: null,
  palette: null,
  defaults: { img_suffix: '.jpg', seg_map_suffix: '.png' },
  description: 'images in img_dir, label maps in ann_dir (MMSegmentation layout)',
});
