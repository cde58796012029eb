import * as fs from 'fs';
import * as path from 'path';
import { SegkitError } from '../../errors';
import { baseSpecPath, emitTypescript } from './emit';
import { loadMmsegTree, toSegkitConfig, type ConfigObject, type MmsegConfigOptions } from './loader';
import { withOverrides } from './types';

export interface ConvertOptions extends MmsegConfigOptions {
  /**
   * Where the `.ts` files go. Absent: each `.ts` next to its `.py`. A path ending in `.ts`: the converted
   * root config (its `.py` bases still go next to their sources). Otherwise a folder: the `.py` tree
   * (root and bases, relative to their common folder) is mirrored into it.
   */
  out?: string;
}

export interface ConvertedFile {
  readonly source: string;
  readonly target: string;
  readonly typescript: string;
}

export interface ConvertResult {
  /** The segkit config the `.py` gives (what loadConfig returns for it, and for the converted `.ts`). */
  readonly config: ConfigObject;
  /** The converted root file. */
  readonly typescript: string;
  /** Every converted `.py` of the `_base_` chain, the root first. */
  readonly files: ConvertedFile[];
  readonly notices: string[];
}

/**
 * Converts an MMSegmentation 0.x `.py` config and its `.py` bases to segkit `.ts` configs (nothing is
 * written; see writeMmsegConversion). The `_base_` chain is kept: each converted file names the
 * converted `.ts` of its bases.
 */
export async function convertMmsegConfig(pyFile: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const { root, files, notices } = await loadMmsegTree(pyFile, options);
  const config = toSegkitConfig(root, withOverrides(options.types), notices);
  for (const notice of notices) options.onNotice?.(notice);
  const targets = targetPaths(files.map((f) => f.file), root.file, options.out);
  const common = commonFolder(files.map((f) => f.file));
  const converted = files.map((file) => {
    const target = targets.get(file.file)!;
    const baseSpecs = file.bases.map((base) => baseSpecPath(target, base.py ? targets.get(base.file)! : base.file));
    const sourceName = path.relative(common, file.file).split(path.sep).join('/');
    return { source: file.file, target, typescript: emitTypescript(file, { baseSpecs, plugins: file.ownPlugins, sourceName }) };
  });
  return { config, typescript: converted[0]!.typescript, files: converted, notices };
}

/** Converts and writes the `.ts` files; an existing file is an error unless `overwrite`. Returns the written paths. */
export async function writeMmsegConversion(pyFile: string, options: ConvertOptions & { overwrite?: boolean } = {}): Promise<ConvertResult> {
  const result = await convertMmsegConfig(pyFile, options);
  const existing = result.files.filter((f) => fs.existsSync(f.target)).map((f) => f.target);
  if (existing.length && !options.overwrite) {
    throw new SegkitError(`convert config: would overwrite ${existing.join(', ')}; pass --force to replace ${existing.length === 1 ? 'it' : 'them'}`);
  }
  for (const file of result.files) {
    fs.mkdirSync(path.dirname(file.target), { recursive: true });
    fs.writeFileSync(file.target, file.typescript);
  }
  return result;
}

function targetPaths(files: readonly string[], root: string, out: string | undefined): Map<string, string> {
  const nextToSource = (file: string) => file.replace(/\.py$/, '.ts');
  const targets = new Map(files.map((file) => [file, nextToSource(file)]));
  if (out === undefined) return targets;
  const resolvedOut = path.resolve(out);
  if (out.endsWith('.ts')) {
    targets.set(root, resolvedOut);
    return targets;
  }
  const common = commonFolder(files);
  for (const file of files) targets.set(file, path.join(resolvedOut, path.relative(common, nextToSource(file))));
  return targets;
}

/** The deepest folder holding every file. */
function commonFolder(files: readonly string[]): string {
  let common = path.dirname(files[0]!);
  for (const file of files) {
    while (path.relative(common, file).startsWith('..')) common = path.dirname(common);
  }
  return common;
}
