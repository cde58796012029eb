import * as fs from 'fs';
import * as path from 'path';
import { SegkitError, SeededRandom, writePng } from '@segkit/core';
import { CITYSCAPES_LABEL_BY_NAME, CITYSCAPES_PALETTE } from './classes';
import { renderCityscapesPolygons } from './convert';

export interface SynthOptions {
  /** Output root, e.g. data/synthetic_drive. */
  out: string;
  /** Training images; validation gets half as many (at least 1). */
  count?: number;
  /** Image size [height, width]. */
  size?: [number, number];
  seed?: number;
  /** Called after each image pair with the count written and the total (progress bars). */
  onProgress?(done: number, total: number): void;
}

export interface SynthSummary {
  out: string;
  train: number;
  val: number;
  size: [number, number];
}

function checkOptions(options: SynthOptions, defaults: { count: number; size: [number, number] }, command: string) {
  const count = options.count ?? defaults.count;
  const size = options.size ?? defaults.size;
  const seed = options.seed ?? 0;
  if (!options.out) throw new SegkitError(`${command}: --out DIR is required`);
  if (!Number.isInteger(count) || count < 1) throw new SegkitError(`${command}: --count: expected a positive integer, got ${count}`);
  if (size.length !== 2 || size.some((s) => !Number.isInteger(s) || s < 32)) throw new SegkitError(`${command}: --size: expected H W integers >= 32, got ${size.join(' ')}`);
  if (!Number.isInteger(seed)) throw new SegkitError(`${command}: --seed: expected an integer, got ${seed}`);
  return { count, valCount: Math.max(1, Math.round(count / 2)), size, seed };
}

// ---------------------------------------------------------------- DRIVE-like retina images

interface Vessel {
  /** Polyline of the vessel's centre line. */
  points: [number, number][];
  width: number;
  /** How much darker than the fundus the vessel is (0..1). */
  contrast: number;
}

/** Grows a branching vessel tree from (x, y) heading `angle`; every segment is pushed to `vessels`. */
function growVessel(random: SeededRandom, vessels: Vessel[], start: [number, number], angle: number, width: number, contrast: number, depth: number, disc: { cx: number; cy: number; r: number }, unit: number): void {
  const points: [number, number][] = [start];
  let [x, y] = start;
  let heading = angle;
  const bend = random.uniform(-0.025, 0.025); // a steady curvature so vessels arc around the fundus
  const maxSteps = Math.round((disc.r * random.uniform(1.0, 1.7)) / (1.5 * unit));
  for (let step = 0; step < maxSteps; step++) {
    heading += bend + 0.12 * random.normal();
    x += Math.cos(heading) * 1.5 * unit;
    y += Math.sin(heading) * 1.5 * unit;
    if (Math.hypot(x - disc.cx, y - disc.cy) > disc.r - 1) break;
    points.push([x, y]);
    if (depth < 3 && step > 4 && random.random() < 0.05) {
      const side = random.random() < 0.5 ? -1 : 1;
      growVessel(random, vessels, [x, y], heading + side * random.uniform(0.5, 1.0), Math.max(1.3 * unit, width * 0.7), contrast * random.uniform(0.8, 1.0), depth + 1, disc, unit);
      width = Math.max(1.3 * unit, width * 0.9);
    }
  }
  if (points.length > 1) vessels.push({ points, width, contrast });
}

/** One retina-like image [H,W,3] RGB and its exact 0/1 vessel label map. */
export function renderRetina(random: SeededRandom, height: number, width: number): { image: Uint8Array; label: Uint8Array } {
  const unit = Math.min(height, width) / 128; // sizes below are for a 128-pixel image
  const disc = { cx: width / 2 + random.uniform(-2, 2) * unit, cy: height / 2 + random.uniform(-2, 2) * unit, r: 0.47 * Math.min(height, width) };
  const side = random.random() < 0.5 ? -1 : 1;
  const optic = { x: disc.cx + side * 0.55 * disc.r, y: disc.cy + random.uniform(-0.1, 0.1) * disc.r, r: random.uniform(7, 9) * unit };
  const vessels: Vessel[] = [];
  const trunks = 4 + random.randint(0, 3);
  for (let t = 0; t < trunks; t++) {
    const vertical = t % 2 === 0 ? -1 : 1; // alternate up and down, as the arcades of a real retina
    const angle = Math.atan2(vertical, -side * random.uniform(0.3, 1.2)) + random.uniform(-0.3, 0.3);
    growVessel(random, vessels, [optic.x, optic.y], angle, random.uniform(3.0, 4.2) * unit, random.uniform(0.35, 0.6), 0, disc, unit);
  }
  const label = new Uint8Array(height * width);
  const darkness = new Float32Array(height * width);
  for (const vessel of vessels) {
    const half = vessel.width / 2;
    for (let i = 0; i + 1 < vessel.points.length; i++) {
      const [ax, ay] = vessel.points[i]!;
      const [bx, by] = vessel.points[i + 1]!;
      const x0 = Math.max(0, Math.floor(Math.min(ax, bx) - half)), x1 = Math.min(width - 1, Math.ceil(Math.max(ax, bx) + half));
      const y0 = Math.max(0, Math.floor(Math.min(ay, by) - half)), y1 = Math.min(height - 1, Math.ceil(Math.max(ay, by) + half));
      const dx = bx - ax, dy = by - ay;
      const lengthSq = dx * dx + dy * dy || 1;
      for (let y = y0; y <= y1; y++) {
        for (let x = x0; x <= x1; x++) {
          const px = x + 0.5, py = y + 0.5;
          const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / lengthSq));
          const distance = Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
          if (distance <= half && Math.hypot(px - disc.cx, py - disc.cy) <= disc.r) {
            label[y * width + x] = 1;
            darkness[y * width + x] = Math.max(darkness[y * width + x]!, vessel.contrast);
          }
        }
      }
    }
  }
  const image = new Uint8Array(height * width * 3);
  const tint = [random.uniform(170, 205), random.uniform(75, 100), random.uniform(35, 55)];
  const noise = random.uniform(4, 8);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const radial = Math.hypot(x + 0.5 - disc.cx, y + 0.5 - disc.cy) / disc.r;
      let rgb: number[];
      if (radial > 1) {
        rgb = [4, 3, 2];
      } else {
        const vignette = 1 - 0.35 * radial * radial;
        const opticGlow = Math.exp(-((x - optic.x) ** 2 + (y - optic.y) ** 2) / (2 * optic.r * optic.r));
        rgb = tint.map((c, k) => c * vignette + opticGlow * [60, 90, 60][k]!);
        const dark = darkness[p]!;
        if (dark > 0) rgb = rgb.map((c, k) => c * (1 - dark * [0.85, 1, 1][k]!));
      }
      for (let k = 0; k < 3; k++) image[p * 3 + k] = Math.max(0, Math.min(255, Math.round(rgb[k]! + noise * random.normal())));
    }
  }
  return { image, label };
}

/**
 * `segkit synth drive`: a DRIVE-layout dataset (images/{training,validation}/<id>.png,
 * annotations/.../<id>_manual1.png with 0/1 values) of retina-like images. Defaults: 20 training +
 * 10 validation images of 128×128, vessels 1.3–4 pixels wide. Validation ids come first (01..), like DRIVE.
 */
export async function synthDrive(options: SynthOptions): Promise<SynthSummary> {
  const { count, valCount, size, seed } = checkOptions(options, { count: 20, size: [128, 128] }, 'synth drive');
  const [height, width] = size;
  const digits = Math.max(2, String(count + valCount).length);
  for (let n = 0; n < valCount + count; n++) {
    const split = n < valCount ? 'validation' : 'training';
    const id = String(n + 1).padStart(digits, '0');
    const { image, label } = renderRetina(SeededRandom.fromSeed(seed, n), height, width);
    writePng(path.join(options.out, 'images', split, `${id}.png`), { data: image, shape: [height, width, 3] });
    writePng(path.join(options.out, 'annotations', split, `${id}_manual1.png`), { data: label, shape: [height, width] });
    options.onProgress?.(n + 1, valCount + count);
  }
  return { out: options.out, train: count, val: valCount, size };
}

// ---------------------------------------------------------------- Cityscapes-like street scenes

type Polygon = [number, number][];

function rect(x0: number, y0: number, x1: number, y1: number): Polygon {
  return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]].map(([x, y]) => [Math.round(x!), Math.round(y!)] as [number, number]);
}

/**
 * A street scene as Cityscapes polygon objects, drawn back to front: sky, buildings, vegetation, terrain,
 * road, sidewalks, then street furniture, vehicles and people, with every one of the 19 train classes and
 * some ignore (255) regions (ego vehicle, static objects, unlabeled gaps).
 */
export function streetScene(random: SeededRandom, height: number, width: number): { label: string; polygon: Polygon }[] {
  const objects: { label: string; polygon: Polygon }[] = [];
  const add = (label: string, polygon: Polygon) => objects.push({ label, polygon });
  const u = (a: number, b: number) => random.uniform(a, b);
  const horizon = height * u(0.38, 0.48);
  const vanishX = width * u(0.4, 0.6);
  add('sky', rect(0, 0, width - 1, horizon));
  for (let x = 0; x < width; ) {
    const w = width * u(0.1, 0.2);
    add('building', rect(x, horizon - height * u(0.12, 0.32), x + w, horizon + 2));
    x += w + width * u(0, 0.04);
  }
  add('wall', rect(width * u(0.02, 0.1), horizon - height * 0.06, width * u(0.18, 0.25), horizon + 2));
  const treeX = width * u(0.65, 0.85), treeY = horizon - height * u(0.08, 0.14), treeR = height * u(0.07, 0.1);
  add('vegetation', Array.from({ length: 8 }, (_, k) => [Math.round(treeX + treeR * Math.cos((k * Math.PI) / 4)), Math.round(treeY + treeR * Math.sin((k * Math.PI) / 4))] as [number, number]));
  add('terrain', rect(0, horizon, width - 1, horizon + height * 0.08));
  const roadHalf = width * u(0.3, 0.4);
  add('road', [[Math.round(vanishX - 4), Math.round(horizon)], [Math.round(vanishX + 4), Math.round(horizon)], [Math.round(vanishX + roadHalf + width * 0.2), height - 1], [Math.round(vanishX - roadHalf - width * 0.2), height - 1]]);
  add('sidewalk', [[Math.round(vanishX - 5), Math.round(horizon + 1)], [Math.round(vanishX - roadHalf - width * 0.2), height - 1], [0, height - 1], [0, Math.round(horizon + height * 0.12)]]);
  add('sidewalk', [[Math.round(vanishX + 5), Math.round(horizon + 1)], [width - 1, Math.round(horizon + height * 0.12)], [width - 1, height - 1], [Math.round(vanishX + roadHalf + width * 0.2), height - 1]]);
  add('fence', rect(width * 0.82, horizon + height * 0.02, width - 1, horizon + height * 0.1));
  const poleX = width * u(0.08, 0.16);
  add('pole', rect(poleX, horizon - height * 0.2, poleX + Math.max(2, width * 0.012), horizon + height * 0.25));
  add('traffic light', rect(poleX - 2, horizon - height * 0.24, poleX + Math.max(4, width * 0.025), horizon - height * 0.14));
  const signX = width * u(0.86, 0.92);
  add('polegroup', rect(signX, horizon - height * 0.1, signX + Math.max(2, width * 0.01), horizon + height * 0.2));
  add('traffic sign', rect(signX - 3, horizon - height * 0.16, signX + Math.max(5, width * 0.03), horizon - height * 0.08));
  add('train', rect(width * u(0.22, 0.3), horizon - height * 0.1, width * u(0.42, 0.48), horizon + height * 0.03));
  add('bus', rect(vanishX + width * 0.05, horizon - height * 0.06, vanishX + width * 0.16, horizon + height * 0.1));
  add('truck', rect(vanishX - width * 0.2, horizon - height * 0.02, vanishX - width * 0.09, horizon + height * 0.12));
  const carX = vanishX + width * u(-0.12, 0.02);
  add('car', [[carX, horizon + height * 0.25], [carX + width * 0.05, horizon + height * 0.17], [carX + width * 0.17, horizon + height * 0.17], [carX + width * 0.22, horizon + height * 0.25], [carX + width * 0.22, horizon + height * 0.36], [carX, horizon + height * 0.36]].map(([x, y]) => [Math.round(x!), Math.round(y!)] as [number, number]));
  add('license plate', rect(carX + width * 0.09, horizon + height * 0.31, carX + width * 0.13, horizon + height * 0.34));
  const personX = width * u(0.04, 0.1);
  add('person', rect(personX, horizon + height * 0.1, personX + width * 0.025, horizon + height * 0.32));
  const bikeX = width * u(0.7, 0.76);
  add('bicycle', rect(bikeX, horizon + height * 0.3, bikeX + width * 0.06, horizon + height * 0.4));
  add('rider', rect(bikeX + width * 0.015, horizon + height * 0.16, bikeX + width * 0.045, horizon + height * 0.31));
  const motoX = width * u(0.58, 0.64);
  add('motorcycle', rect(motoX, horizon + height * 0.22, motoX + width * 0.06, horizon + height * 0.3));
  add('static', rect(width * u(0.9, 0.94), horizon + height * 0.25, width - 1, horizon + height * 0.35));
  add('ego vehicle', [[0, height - 1], [0, Math.round(height * 0.93)], [Math.round(width * 0.3), Math.round(height * 0.9)], [Math.round(width * 0.7), Math.round(height * 0.9)], [width - 1, Math.round(height * 0.93)], [width - 1, height - 1]]);
  return objects;
}

/** Colours a train-id map with the Cityscapes palette, per-object shading and noise (ignore regions dark grey). */
function paintScene(random: SeededRandom, labels: Uint8Array, height: number, width: number): Uint8Array {
  const image = new Uint8Array(height * width * 3);
  const shade = Array.from({ length: 256 }, () => random.uniform(0.85, 1.1));
  for (let p = 0; p < labels.length; p++) {
    const id = labels[p]!;
    const colour = id < CITYSCAPES_PALETTE.length ? CITYSCAPES_PALETTE[id]! : [40, 40, 40];
    const y = Math.floor(p / width);
    const texture = 1 + 0.05 * Math.sin((p % width) * 0.7 + y * 0.3 * (id + 1));
    for (let k = 0; k < 3; k++) image[p * 3 + k] = Math.max(0, Math.min(255, Math.round(colour[k]! * shade[id]! * texture + 5 * random.normal())));
  }
  return image;
}

/**
 * `segkit synth cityscapes`: a small Cityscapes-layout set (leftImg8bit/{train,val}/<city>/..._leftImg8bit.png,
 * gtFine/.../_gtFine_polygons.json and _gtFine_labelTrainIds.png, train.txt/val.txt). Defaults: 8 training +
 * 4 validation scenes of 128×256 (H×W). The label maps are rendered from the polygon files with the same
 * code as `segkit convert cityscapes`.
 */
export async function synthCityscapes(options: SynthOptions): Promise<SynthSummary> {
  const { count, valCount, size, seed } = checkOptions(options, { count: 8, size: [128, 256] }, 'synth cityscapes');
  const [height, width] = size;
  const lists: Record<string, string[]> = { train: [], val: [] };
  for (let n = 0; n < count + valCount; n++) {
    const split = n < count ? 'train' : 'val';
    const city = split === 'train' ? 'synthtown' : 'synthville';
    const stem = `${city}_000000_${String(n).padStart(6, '0')}`;
    const random = SeededRandom.fromSeed(seed, n);
    const polygons = { imgHeight: height, imgWidth: width, objects: streetScene(random, height, width) };
    for (const object of polygons.objects) {
      if (!CITYSCAPES_LABEL_BY_NAME.has(object.label) && !object.label.endsWith('group')) throw new Error(`synth: unknown label ${object.label}`);
    }
    const labels = renderCityscapesPolygons(polygons, stem);
    const gtDir = path.join(options.out, 'gtFine', split, city);
    fs.mkdirSync(gtDir, { recursive: true });
    fs.writeFileSync(path.join(gtDir, `${stem}_gtFine_polygons.json`), JSON.stringify(polygons));
    writePng(path.join(gtDir, `${stem}_gtFine_labelTrainIds.png`), { data: labels, shape: [height, width] });
    writePng(path.join(options.out, 'leftImg8bit', split, city, `${stem}_leftImg8bit.png`), { data: paintScene(random, labels, height, width), shape: [height, width, 3] });
    lists[split]!.push(`${city}/${stem}`);
    options.onProgress?.(n + 1, count + valCount);
  }
  for (const [split, stems] of Object.entries(lists)) fs.writeFileSync(path.join(options.out, `${split}.txt`), stems.map((s) => `${s}\n`).join(''));
  return { out: options.out, train: count, val: valCount, size };
}
