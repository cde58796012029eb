import * as fs from 'fs';
import * as path from 'path';
import { SegkitError } from '../errors';
import { describeOsError } from '../os-errors';

/** Temporary files of an atomic write: `<name>.tmp-<pid>` next to the target. */
const TEMPORARY = /\.tmp-(\d+)$/;

/**
 * Writes `file` so that it is either the old file or the complete new one, never a truncated mix: the
 * bytes go to a temporary file in the same folder, are flushed to disk, and the temporary file is renamed
 * over the target (atomic on POSIX file systems). On failure the temporary file is removed and the error is
 * a SegkitError naming the file and the OS error.
 */
export function writeFileAtomic(file: string, write: (fd: number) => void): void {
  const temporary = `${file}.tmp-${process.pid}`;
  let fd: number | undefined;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fd = fs.openSync(temporary, 'w');
    write(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temporary, file);
  } catch (error) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(temporary, { force: true });
    if (error instanceof SegkitError) throw error;
    throw new SegkitError(`cannot write ${file}: ${describeOsError(error, file)}`);
  }
}

/** Copies a file atomically (for `latest.safetensors`): a kill mid-copy leaves the previous `latest` intact. */
export function copyFileAtomic(source: string, target: string): void {
  writeFileAtomic(target, (fd) => {
    const input = fs.openSync(source, 'r');
    try {
      const buffer = Buffer.allocUnsafe(1 << 22);
      for (let read; (read = fs.readSync(input, buffer, 0, buffer.length, null)) > 0; ) fs.writeSync(fd, buffer, 0, read);
    } finally {
      fs.closeSync(input);
    }
  });
}

/** Removes temporary files that earlier runs left in `dir` when their process died mid-write (not this process's). */
export function removeStaleTemporaryFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const match = TEMPORARY.exec(name);
    if (!match || Number(match[1]) === process.pid || processAlive(Number(match[1]))) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
