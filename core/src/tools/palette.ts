// Class colours for predictions, without Node: shared by `segkit infer`, inferenceSegmentor and @segkit/web.
import type { NdArray } from '../components';
import { SegkitError } from '../errors';

export type Rgb = readonly [number, number, number];

export interface ClassPalette {
  /** Class names when known (checkpoint meta, a palette file, a built-in dataset). */
  classes?: string[];
  palette: Rgb[];
  /** Where the palette came from, for the log line (e.g. `checkpoint meta.PALETTE`). */
  source: string;
}

/**
 * Palettes by name for `--palette` (and for checkpoints whose config names a built-in dataset); the same
 * values as @segkit/datasets' CITYSCAPES_PALETTE and DRIVE_PALETTE, kept here so inference needs no plugin.
 */
export const BUILTIN_PALETTES: Readonly<Record<string, { classes: readonly string[]; palette: readonly Rgb[] }>> = {
  cityscapes: {
    classes: [
      'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign', 'vegetation', 'terrain',
      'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle',
    ],
    palette: [
      [128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153], [153, 153, 153], [250, 170, 30],
      [220, 220, 0], [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60], [255, 0, 0], [0, 0, 142],
      [0, 0, 70], [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32],
    ],
  },
  drive: { classes: ['background', 'vessel'], palette: [[120, 120, 120], [6, 230, 230]] },
};

/** Dataset types of the config whose palette is a built-in one. */
const DATASET_PALETTES: Readonly<Record<string, string>> = { CityscapesDataset: 'cityscapes', DRIVEDataset: 'drive' };

/** `count` well-separated colours (golden-angle hues), the same for every run: the palette when nothing names one. */
export function defaultPalette(count: number): Rgb[] {
  const colours: Rgb[] = [];
  for (let i = 0; i < count; i++) {
    const hue = (i * 137.508) % 360;
    const value = i % 2 === 0 ? 0.95 : 0.7;
    const chroma = value * 0.75;
    const x = chroma * (1 - Math.abs(((hue / 60) % 2) - 1));
    const [r, g, b] = hue < 60 ? [chroma, x, 0] : hue < 120 ? [x, chroma, 0] : hue < 180 ? [0, chroma, x] : hue < 240 ? [0, x, chroma] : hue < 300 ? [x, 0, chroma] : [chroma, 0, x];
    const m = value - chroma;
    colours.push([Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)]);
  }
  return colours;
}

/** A list of [r, g, b] with integers 0..255, or a clear error naming `where`. */
export function parsePalette(value: unknown, where: string): Rgb[] {
  if (!Array.isArray(value) || value.length === 0) throw new SegkitError(`${where}: expected a non-empty list of [r, g, b] colours`);
  return value.map((colour, i) => {
    if (!Array.isArray(colour) || colour.length !== 3 || colour.some((c) => !Number.isInteger(c) || c < 0 || c > 255)) {
      throw new SegkitError(`${where}[${i}]: expected [r, g, b] with integers 0..255, got ${JSON.stringify(colour)}`);
    }
    return [colour[0], colour[1], colour[2]] as Rgb;
  });
}

export function parseClasses(value: unknown, where: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((c) => typeof c !== 'string')) throw new SegkitError(`${where}: expected a list of class names`);
  return value as string[];
}

/** The test (or val) dataset config of a config dict, when there is one. */
function testDatasetOf(config: unknown): Record<string, unknown> | undefined {
  const data = (config as { data?: Record<string, unknown> } | undefined)?.data;
  const cfg = data?.test ?? data?.val;
  return cfg && typeof cfg === 'object' && !Array.isArray(cfg) ? (cfg as Record<string, unknown>) : undefined;
}

/** The classes and palette a dataset config states (`classes`/`palette` keys, or a built-in dataset type). */
function paletteOfDatasetConfig(config: unknown, source: string): ClassPalette | undefined {
  const dataset = testDatasetOf(config);
  if (!dataset) return undefined;
  if (dataset.palette !== undefined) {
    return { classes: parseClasses(dataset.classes, `${source}: classes`), palette: parsePalette(dataset.palette, `${source}: palette`), source };
  }
  const builtin = typeof dataset.type === 'string' ? DATASET_PALETTES[dataset.type] : undefined;
  if (builtin) return { classes: [...BUILTIN_PALETTES[builtin]!.classes], palette: [...BUILTIN_PALETTES[builtin]!.palette], source: `${source} (${dataset.type})` };
  return undefined;
}

/**
 * The palette for predictions without building a dataset (no dataset folder needed): `explicit` (`--palette`,
 * see `readPaletteOption`) when given;
 * else a checkpoint's `meta.PALETTE` (MMSegmentation) or the config stored in its `meta.config` (segkit);
 * else the command's config; else `defaultPalette(numClasses)`.
 */
export function resolvePalette(sources: { explicit?: ClassPalette; checkpointMeta?: Record<string, unknown> | null; config?: unknown; numClasses: number }): ClassPalette {
  if (sources.explicit) return sources.explicit;
  const meta = sources.checkpointMeta;
  if (meta && meta.PALETTE !== undefined) {
    return { classes: parseClasses(meta.CLASSES, 'checkpoint meta.CLASSES'), palette: parsePalette(meta.PALETTE, 'checkpoint meta.PALETTE'), source: 'checkpoint meta.PALETTE' };
  }
  const fromCheckpoint = meta?.config ? paletteOfDatasetConfig(meta.config, 'checkpoint meta.config') : undefined;
  if (fromCheckpoint) return fromCheckpoint;
  const fromConfig = paletteOfDatasetConfig(sources.config, 'config');
  if (fromConfig) return fromConfig;
  return { palette: defaultPalette(sources.numClasses), source: `default palette (${sources.numClasses} classes)` };
}

/** The label map in colour, [H, W, 3] RGB; labels outside the palette (ignore index 255) are black. */
export function colorizeLabels(labels: NdArray<Int32Array | Uint8Array>, palette: readonly Rgb[]): NdArray<Uint8Array> {
  const [height, width] = labels.shape;
  const out = new Uint8Array(height! * width! * 3);
  for (let p = 0; p < labels.data.length; p++) {
    const colour = palette[labels.data[p]!];
    if (!colour) continue;
    out[3 * p] = colour[0];
    out[3 * p + 1] = colour[1];
    out[3 * p + 2] = colour[2];
  }
  return { data: out, shape: [height!, width!, 3] };
}
