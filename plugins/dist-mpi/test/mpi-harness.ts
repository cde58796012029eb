import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { loadMpiAddon } from '../src/addon';

export const repo = path.resolve(__dirname, '..', '..', '..', '..');
export const segkitBin = path.join(repo, 'core', 'bin', 'segkit.js');

/** Why the MPI tests cannot run here (no mpirun, or the binding is not built), or undefined. */
export function mpiUnavailable(): string | undefined {
  const probe = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev)';
  const loaded = loadMpiAddon();
  return loaded.addon ? undefined : loaded.reason;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Open MPI refuses root unless told; oversubscribe lets 2 ranks share fewer free cores. One thread per rank. */
const MPI_ENV = { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1', SEGKIT_NUM_THREADS: '1', SEGKIT_DEBUG: '' };

/**
 * What srun gives each task, from Open MPI's per-rank variables: mpirun then stands in for srun, and
 * `--launcher slurm` runs as under Slurm with PMIx (srun --mpi=pmix).
 */
const AS_SRUN_TASK = 'SLURM_PROCID=$OMPI_COMM_WORLD_RANK SLURM_NTASKS=$OMPI_COMM_WORLD_SIZE SLURM_LOCALID=$OMPI_COMM_WORLD_LOCAL_RANK SLURM_NODELIST=localhost exec "$0" "$@"';

/**
 * `mpirun -np <ranks> node <args>` (or plain `node <args>` for ranks = 0), with a deadline so a hang fails
 * the test. `asSrunTasks` sets the SLURM variables of each task as srun would.
 */
export function run(ranks: number, args: readonly string[], options: { cwd?: string; timeoutSeconds?: number; asSrunTasks?: boolean } = {}): RunResult {
  const command = ranks > 0 ? 'mpirun' : process.execPath;
  const node = options.asSrunTasks ? ['sh', '-c', AS_SRUN_TASK, process.execPath] : [process.execPath];
  const argv = ranks > 0 ? ['-np', String(ranks), '--oversubscribe', ...node, ...args] : [...args];
  const started = performance.now();
  const result = spawnSync(command, argv, {
    cwd: options.cwd ?? repo,
    encoding: 'utf8',
    env: { ...process.env, ...MPI_ENV },
    timeout: (options.timeoutSeconds ?? 300) * 1000,
    killSignal: 'SIGKILL',
  });
  return { code: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? '', seconds: (performance.now() - started) / 1000 };
}

/** The JSON log records of a work dir (MMSegmentation's .log.json lines). */
export function jsonLog(workDir: string): Record<string, unknown>[] {
  const files = fs.readdirSync(workDir).filter((f) => f.endsWith('.log.json')).sort();
  return files.flatMap((f) =>
    fs
      .readFileSync(path.join(workDir, f), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>),
  );
}
