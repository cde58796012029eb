import * as fs from 'fs';
import * as path from 'path';
import { SegkitError } from './errors';

/**
 * What an OS error means for a path, in words: `/a/b is a file, not a folder (EEXIST)`,
 * `EACCES: permission denied`. Node's own message ends with the syscall and the path, which the
 * caller's message names already.
 */
export function describeOsError(error: unknown, target: string): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EEXIST' || code === 'ENOTDIR') {
    const file = firstFileOnPath(target);
    if (file) return `${file} is a file, not a folder (${code})`;
  }
  if (code === 'EISDIR') return `${target} is a folder (EISDIR)`;
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/, \w+ '[^']*'(?: -> '[^']*')?$/, '');
}

/** The nearest of `target` and its parents that exists and is not a folder. */
function firstFileOnPath(target: string): string | undefined {
  const parts: string[] = [];
  for (let current = path.resolve(target); ; current = path.dirname(current)) {
    parts.unshift(current);
    if (path.dirname(current) === current) break;
  }
  for (const candidate of parts) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(candidate);
    } catch {
      return undefined;
    }
    if (!stat.isDirectory()) return candidate;
  }
  return undefined;
}

/**
 * `mkdir -p` for a folder the user named (`work_dir`, `--out`, `--show-dir`): an OS error becomes one
 * SegkitError, e.g. `work_dir: cannot create /x/y: /x is a file, not a folder (ENOTDIR)`.
 */
export function makeDirectory(dir: string, role?: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new SegkitError(`${role ? `${role}: ` : ''}cannot create ${dir}: ${describeOsError(error, dir)}`, role);
  }
}

/** Writes a small file (a config dump, a plot) whose OS errors are the user's to fix: `role: cannot write <file>: ...`. */
export function writeFileOrExplain(file: string, data: string | Uint8Array, role?: string): void {
  try {
    fs.writeFileSync(file, data);
  } catch (error) {
    throw new SegkitError(`${role ? `${role}: ` : ''}cannot write ${file}: ${describeOsError(error, file)}`, role);
  }
}
