import { z } from 'zod';
import { SegkitError } from '../errors';
import { nodeBuiltin } from '../host';

/** `class_weight`: a list of numbers, or a path to a `.json` (list of numbers) or `.npy` (float32/float64, 1-D) file. */
export const classWeightSchema = z.union([z.array(z.number()), z.string()], { error: 'expected a list of numbers or a path to a .json or .npy file' }).nullable().default(null);

export interface ClassWeightOptions {
  /** Config path of the option, for error messages (e.g. `model.decode_head.loss_decode.class_weight`). */
  path: string;
  /** Folder relative file paths are resolved from. */
  configDir: string;
  /** When known (the head passes it), the list must have exactly this length. */
  numClasses?: number;
}

/**
 * MMSegmentation's `get_class_weight`, read at build time: a list is used as given, a string is a file
 * path (`.json` or `.npy`; pickle is Python-only). Errors name the config path and the file.
 */
export function loadClassWeight(value: readonly number[] | string | null | undefined, options: ClassWeightOptions): number[] | null {
  if (value === null || value === undefined) return null;
  let weights: number[];
  let source = '';
  if (typeof value === 'string') {
    const fs = nodeBuiltin('fs', `${options.path}: reading class_weight from a file`);
    const path = nodeBuiltin('path', `${options.path}: reading class_weight from a file`);
    const file = path.resolve(options.configDir, value);
    source = ` (from '${value}')`;
    if (!fs.existsSync(file)) throw new SegkitError(`${options.path}: class weight file '${value}' not found (resolved to ${file})`, options.path);
    const extension = path.extname(file).toLowerCase();
    if (extension === '.json') weights = readJsonWeights(file, value, options.path);
    else if (extension === '.npy') weights = parseNpy(fs.readFileSync(file), `${options.path}: '${value}'`);
    else {
      throw new SegkitError(`${options.path}: class weight file '${value}' must be a .json list of numbers or a 1-D float .npy array, got a '${extension || 'no'}' extension`, options.path);
    }
  } else {
    weights = [...value];
  }
  const bad = weights.findIndex((w) => typeof w !== 'number' || !Number.isFinite(w));
  if (bad >= 0) throw new SegkitError(`${options.path}: class weight ${bad}${source} must be a finite number, got ${String(weights[bad])}`, options.path);
  if (options.numClasses !== undefined && weights.length !== options.numClasses) {
    throw new SegkitError(`${options.path}: expected ${options.numClasses} class weights (one per class, num_classes = ${options.numClasses}), got ${weights.length}${source}`, options.path);
  }
  return weights;
}

function readJsonWeights(file: string, shown: string, configPath: string): number[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(nodeBuiltin('fs', `${configPath}: reading class_weight from a file`).readFileSync(file, 'utf8'));
  } catch (error) {
    throw new SegkitError(`${configPath}: class weight file '${shown}' is not valid JSON: ${(error as Error).message}`, configPath);
  }
  if (!Array.isArray(parsed) || !parsed.every((w) => typeof w === 'number')) {
    throw new SegkitError(`${configPath}: class weight file '${shown}' must contain a JSON list of numbers, got ${Array.isArray(parsed) ? 'a list with non-numbers' : typeof parsed}`, configPath);
  }
  return parsed as number[];
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/**
 * Reads a NumPy `.npy` file holding a 1-D little-endian float32 or float64 array (format versions 1–3:
 * magic, version, header length, Python-dict header with `descr`, `fortran_order`, `shape`, then data).
 * `where` prefixes error messages.
 */
export function parseNpy(bytes: Uint8Array, where: string): number[] {
  const fail = (what: string): never => {
    throw new SegkitError(`${where} is not a 1-D float32/float64 .npy array: ${what}`);
  };
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) fail('missing the \\x93NUMPY magic');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerStart = major === 1 ? 10 : 12;
  if (major < 1 || major > 3) fail(`unknown format version ${major}`);
  if (bytes.length < headerStart) fail('truncated header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = headerStart + headerLength;
  if (bytes.length < dataStart) fail('truncated header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || shapeText === undefined) fail('unreadable header');
  const dims = shapeText!.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (dims.length !== 1 || !Number.isInteger(dims[0])) fail(`shape (${shapeText}) is not 1-D`);
  const itemSize = descr === '<f4' ? 4 : descr === '<f8' ? 8 : fail(`dtype '${descr}' (expected '<f4' or '<f8')`);
  const count = dims[0]!;
  if (bytes.length < dataStart + count * itemSize) fail(`expected ${count} values, the file is truncated`);
  const values: number[] = [];
  for (let i = 0; i < count; i++) {
    const offset = dataStart + i * itemSize;
    values.push(itemSize === 4 ? view.getFloat32(offset, true) : view.getFloat64(offset, true));
  }
  return values;
}
