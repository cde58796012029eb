import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SegkitError } from '../errors';
import { processAlive } from '../checkpoint/atomic-file';

/** What the lock file records about the run that holds a work dir. */
interface LockHolder {
  pid: number;
  host: string;
  started: string;
}

export const LOCK_FILE = '.segkit.lock';

/**
 * One writer per work dir: `<work_dir>/.segkit.lock` holds the running process's PID, host and start
 * time. A second run refuses with the holder named; a lock whose process is gone (a killed run) is taken
 * over with a notice. Returns the release function.
 */
export function lockWorkDir(workDir: string, warn: (message: string) => void): () => void {
  const file = path.join(workDir, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
      return () => {
        // Only remove the lock if it is still ours (never a successor's).
        if (readHolder(file)?.pid === me.pid) fs.rmSync(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new SegkitError(`work_dir: cannot create ${file}: ${(error as Error).message}`);
    }
    const holder = readHolder(file);
    // Our own PID counts as alive too: another run in this process holds the dir.
    if (holder && holder.host === me.host && processAlive(holder.pid)) {
      throw new SegkitError(
        `work_dir: ${workDir} is in use by another segkit run (pid ${holder.pid}, started ${holder.started}); use another --work-dir, or wait for that run to end`,
      );
    }
    if (holder && holder.host !== me.host) {
      throw new SegkitError(`work_dir: ${workDir} is locked by a run on host ${holder.host} (pid ${holder.pid}, started ${holder.started}); if that run is over, remove ${file}`);
    }
    warn(`work_dir: taking over a stale lock${holder ? ` of pid ${holder.pid} (started ${holder.started}, no longer running)` : ' (unreadable)'}`);
    fs.rmSync(file, { force: true });
  }
  throw new SegkitError(`work_dir: could not lock ${workDir}: another run took it at the same time`);
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(fs.readFileSync(file, 'utf8')) as LockHolder;
    return typeof holder.pid === 'number' ? holder : undefined;
  } catch {
    return undefined;
  }
}

/** A timestamp no earlier run used in this work dir (`20261202_071500`, else `..._1`, `..._2`), so log files never mix. */
export function uniqueTimestamp(workDir: string, timestamp: string): string {
  const used = new Set(fs.existsSync(workDir) ? fs.readdirSync(workDir).map((name) => name.split('.')[0]) : []);
  let candidate = timestamp;
  for (let n = 1; used.has(candidate); n++) candidate = `${timestamp}_${n}`;
  return candidate;
}
