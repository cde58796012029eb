import * as fs from 'fs';
import * as path from 'path';
import { SegkitError, readImage, writePng } from '@segkit/core';
import { CITYSCAPES_LABEL_BY_NAME } from './classes';
import { fillPolygon, type Point } from './raster';
import { scanFiles } from './paths';
import { readZip, type ZipEntry } from './zip';

export interface ConvertProgressOptions {
  /** Called after each file written, with the count and total of the current stage (e.g. `training`). */
  onProgress?(done: number, total: number, stage: string): void;
}

export interface ConvertSummary {
  /** Files written per output folder (relative to the output root). */
  written: Record<string, number>;
}

/** A DRIVE image (TIFF) re-encoded as an RGB PNG, pixel values unchanged. */
async function writeDriveImage(entry: ZipEntry, zipFile: string, outFile: string): Promise<void> {
  writePng(outFile, await readImage(entry.read(), { order: 'rgb', name: `${zipFile}: ${entry.name}` }));
}

/** A DRIVE manual annotation (GIF, 0/255) as a one-channel PNG of first channel // 128 → {0, 1}. */
async function writeDriveLabel(entry: ZipEntry, zipFile: string, outFile: string): Promise<void> {
  const { data: rgb, shape } = await readImage(entry.read(), { order: 'rgb', name: `${zipFile}: ${entry.name}` });
  const labels = new Uint8Array(rgb.length / 3);
  for (let p = 0; p < labels.length; p++) labels[p] = rgb[p * 3]! >> 7;
  writePng(outFile, { data: labels, shape: [shape[0]!, shape[1]!] });
}

function stemOf(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** Entries directly inside a folder named `folder` (at any depth) with one of the extensions. */
function entriesIn(entries: readonly ZipEntry[], folder: string, extensions: readonly string[]): ZipEntry[] {
  return entries.filter((entry) => {
    const parts = entry.name.split('/');
    return parts.length >= 2 && parts[parts.length - 2] === folder && extensions.some((ext) => entry.name.toLowerCase().endsWith(ext));
  });
}

async function convertDriveSplit(zipFile: string, outDir: string, split: 'training' | 'validation', strip: string, summary: ConvertSummary, options: ConvertProgressOptions): Promise<void> {
  const entries = readZip(zipFile);
  const images = entriesIn(entries, 'images', ['.tif', '.tiff']);
  const manual1 = entriesIn(entries, '1st_manual', ['.gif']);
  const manual2 = entriesIn(entries, '2nd_manual', ['.gif']);
  if (images.length === 0) throw new SegkitError(`${zipFile}: no '<folder>/images/*.tif' entries; is this DRIVE's ${split === 'training' ? 'training' : 'test'}.zip?`);
  // Each image needs its first manual annotation: <id>_<split>.tif ↔ <id>_manual1.gif.
  const ids = images.map((entry) => stemOf(entry.name).replace(strip, ''));
  const labelled = new Set(manual1.map((entry) => stemOf(entry.name).replace(/_manual1$/, '')));
  const unlabelled = ids.filter((id) => !labelled.has(id));
  if (unlabelled.length) throw new SegkitError(`${zipFile}: image(s) ${unlabelled.join(', ')} have no 1st_manual/<id>_manual1.gif annotation`);
  const total = images.length + manual1.length + manual2.length;
  let done = 0;
  const count = (folder: string) => {
    summary.written[folder] = (summary.written[folder] ?? 0) + 1;
    options.onProgress?.(++done, total, split);
  };
  for (const [k, entry] of images.entries()) {
    await writeDriveImage(entry, zipFile, path.join(outDir, 'images', split, `${ids[k]}.png`));
    count(`images/${split}`);
  }
  for (const entry of [...manual1, ...manual2]) {
    await writeDriveLabel(entry, zipFile, path.join(outDir, 'annotations', split, `${stemOf(entry.name)}.png`));
    count(`annotations/${split}`);
  }
}

/**
 * MMSegmentation's `tools/convert_datasets/drive.py`: training.zip → images/training/<id>.png and
 * annotations/training/<id>_manual1.png; test.zip → the same under `validation` (plus `_manual2.png`
 * from a 2nd_manual folder). Images keep their pixels; labels are the GIF's first channel // 128.
 */
export async function convertDrive(trainingZip: string, testZip: string, outDir = 'data/DRIVE', options: ConvertProgressOptions = {}): Promise<ConvertSummary> {
  const summary: ConvertSummary = { written: {} };
  await convertDriveSplit(trainingZip, outDir, 'training', '_training', summary, options);
  await convertDriveSplit(testZip, outDir, 'validation', '_test', summary, options);
  return summary;
}

interface CityscapesPolygons {
  imgHeight: number;
  imgWidth: number;
  objects: { label: string; polygon: [number, number][]; deleted?: number | boolean }[];
}

function parsePolygons(file: string): CityscapesPolygons {
  let parsed: CityscapesPolygons;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as CityscapesPolygons;
  } catch (error) {
    throw new SegkitError(`${file}: not a valid JSON polygon file: ${(error as Error).message}`);
  }
  if (!Number.isInteger(parsed?.imgHeight) || !Number.isInteger(parsed?.imgWidth) || !Array.isArray(parsed?.objects)) {
    throw new SegkitError(`${file}: expected { imgHeight, imgWidth, objects: [{ label, polygon }] }`);
  }
  return parsed;
}

/**
 * cityscapesscripts' json2labelImg with trainIds: a map filled with 255 ('unlabeled'), then every
 * object's polygon filled with its label's trainId in file order (later objects cover earlier ones);
 * deleted objects and the license plate (id −1) are skipped; '<name>group' labels use '<name>'.
 */
export function renderCityscapesPolygons(polygons: CityscapesPolygons, source = 'polygons'): Uint8Array {
  const { imgWidth: width, imgHeight: height } = polygons;
  const labels = new Uint8Array(width * height).fill(255);
  for (const [k, object] of polygons.objects.entries()) {
    if (object.deleted) continue;
    let name = object.label;
    if (!CITYSCAPES_LABEL_BY_NAME.has(name) && name.endsWith('group')) name = name.slice(0, -'group'.length);
    const label = CITYSCAPES_LABEL_BY_NAME.get(name);
    if (!label) throw new SegkitError(`${source}: objects.${k}: label '${object.label}' is not in Cityscapes' label table`);
    if (label.id < 0) continue;
    if (!Array.isArray(object.polygon)) throw new SegkitError(`${source}: objects.${k}: expected a polygon of [x, y] points`);
    fillPolygon(labels, width, height, object.polygon as Point[], label.trainId);
  }
  return labels;
}

/**
 * MMSegmentation's `tools/convert_datasets/cityscapes.py`: renders every `gtFine/**\/*_gtFine_polygons.json`
 * to `*_gtFine_labelTrainIds.png` beside it and writes `<split>.txt` (stems relative to gtFine/<split>,
 * sorted) for each split folder present.
 */
export async function convertCityscapes(root: string, outDir: string = root, options: ConvertProgressOptions = {}): Promise<ConvertSummary> {
  const gtDir = path.join(root, 'gtFine');
  if (!fs.existsSync(gtDir)) throw new SegkitError(`${root}: no gtFine folder (expected ${gtDir} from Cityscapes' gtFine_trainvaltest.zip)`);
  const summary: ConvertSummary = { written: {} };
  const suffix = '_gtFine_polygons.json';
  const polygonFiles = scanFiles(gtDir, suffix);
  if (polygonFiles.length === 0) throw new SegkitError(`${gtDir}: no *${suffix} files found`);
  for (const [index, relative] of polygonFiles.entries()) {
    const file = path.join(gtDir, relative);
    const polygons = parsePolygons(file);
    const labels = renderCityscapesPolygons(polygons, file);
    writePng(file.slice(0, -suffix.length) + '_gtFine_labelTrainIds.png', { data: labels, shape: [polygons.imgHeight, polygons.imgWidth] });
    const folder = `gtFine/${path.dirname(relative)}`;
    summary.written[folder] = (summary.written[folder] ?? 0) + 1;
    options.onProgress?.(index + 1, polygonFiles.length, 'polygons');
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const split of ['train', 'val', 'test']) {
    const splitDir = path.join(gtDir, split);
    if (!fs.existsSync(splitDir)) continue;
    const stems = scanFiles(splitDir, suffix).map((f) => f.slice(0, -suffix.length));
    fs.writeFileSync(path.join(outDir, `${split}.txt`), stems.map((s) => `${s}\n`).join(''));
    summary.written[`${split}.txt`] = stems.length;
  }
  return summary;
}
