import * as fs from 'fs';
import * as path from 'path';
import { SegkitError } from '../errors';

/**
 * TensorFlow.js packages that must exist once in a process: tfjs-core keeps its engine, kernel
 * registry and Tensor class per copy (a tensor of one copy fails `instanceof` in the other, kernels
 * registered on one are missing from the other), and tfjs-backend-cpu's MathBackendCPU is the base
 * class of segkit's `native` backend. Every @segkit package declares them as peer dependencies so that
 * npm installs one copy; this check catches a tree that still has two (a nested, different version).
 */
export const SINGLETON_PACKAGES = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu'] as const;

export interface LoadedCopy {
  /** The package folder (the module cache holds real paths). */
  readonly dir: string;
  readonly version: string;
  /** Who required it first: the package (nearest package.json name) of a module outside the copy, or that module's file. */
  readonly loadedBy: string;
}

type ModuleCache = Readonly<Record<string, NodeJS.Module | undefined>>;

/** The copies of `packageName` whose files are in the CommonJS module cache, in load order. */
export function loadedCopies(packageName: string, cache: ModuleCache = require.cache): LoadedCopy[] {
  const marker = `${path.sep}node_modules${path.sep}${packageName.split('/').join(path.sep)}${path.sep}`;
  const dirs: string[] = [];
  for (const file of Object.keys(cache)) {
    const at = file.lastIndexOf(marker);
    if (at < 0) continue;
    const dir = file.slice(0, at + marker.length - 1);
    if (!dirs.includes(dir)) dirs.push(dir);
  }
  return dirs.map((dir) => ({ dir, version: packageVersion(dir), loadedBy: importerOf(dir, cache) }));
}

/**
 * Throws one SegkitError when two copies of a TensorFlow.js singleton package are loaded, naming
 * both versions and folders and who loaded each (instead of wrong results or "kernel not registered"
 * errors much later).
 */
export function assertSingleTfjs(cache: ModuleCache = require.cache): void {
  for (const packageName of SINGLETON_PACKAGES) {
    const copies = loadedCopies(packageName, cache);
    if (copies.length < 2) continue;
    const listed = copies.map((copy) => `${copy.version} at ${copy.dir} (loaded by ${copy.loadedBy})`).join(' and ');
    throw new SegkitError(
      `two copies of ${packageName} are loaded: ${listed}. segkit and its plugins must share one copy: install a single version ` +
        `(every @segkit package declares it as a peer dependency; \`npm ls ${packageName}\` shows which package brings the other).`,
    );
  }
}

function packageVersion(dir: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown version';
  } catch {
    return 'unknown version';
  }
}

/** The first cached module outside `dir` that has a module inside it as a child. */
function importerOf(dir: string, cache: ModuleCache): string {
  const inside = (file: string) => file.startsWith(dir + path.sep);
  for (const [file, mod] of Object.entries(cache)) {
    if (!mod || inside(file) || !mod.children.some((child) => inside(child.filename))) continue;
    return nearestPackageName(file) ?? file;
  }
  return 'an unknown module';
}

function nearestPackageName(file: string): string | undefined {
  for (let dir = path.dirname(file); path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (!fs.existsSync(manifest)) continue;
    try {
      const name = (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name;
      if (name) return name;
    } catch {
      // an unreadable manifest: keep looking upwards
    }
  }
  return undefined;
}
