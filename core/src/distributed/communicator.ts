/**
 * The collective operations data-parallel training needs, behind one small interface that a launcher
 * plugin implements on an existing engine (`@segkit/dist-mpi`: the system's MPI). Core never moves
 * bytes between processes itself. All calls are collective: every rank makes the same calls in the same
 * order, or the run hangs (MPI's contract); they block until the collective completes.
 */
export interface Communicator {
  /** This process's rank, 0..size-1. Rank 0 writes logs and checkpoints. */
  readonly rank: number;
  /** Number of processes (MMCV's world size). */
  readonly size: number;
  /** Rank among the processes on this machine (picks a device or a share of the cores). */
  readonly localRank: number;
  /** Processes on this machine. */
  readonly localSize: number;
  /** What runs underneath, for the log (e.g. `MPI (Open MPI v4.1.4)`). */
  readonly description: string;
  /** In-place sum over every rank, or the mean (sum divided by `size`). */
  allreduce(buffer: Float32Array, op: 'sum' | 'mean'): void;
  /** Rank `root`'s bytes into every rank's `buffer` (same length on every rank), in place. */
  broadcast(buffer: Float32Array | Uint8Array, root?: number): void;
  barrier(): void;
  /** Every rank's (small, JSON-serialisable) value, in rank order, on `root`; undefined on the others. */
  gather<T>(value: T, root?: number): T[] | undefined;
  /**
   * Ends every rank (MPI_Abort): after an error on one rank the others may be blocked in a collective,
   * and only the launcher can end them. Prints nothing; the caller prints the reason first.
   */
  abort(code: number): never;
  /** Shuts the engine down at the end of a run (idempotent). */
  finalize(): void;
}

/** One process: every collective is the identity. */
export const SINGLE_PROCESS: Communicator = {
  rank: 0,
  size: 1,
  localRank: 0,
  localSize: 1,
  description: 'one process',
  allreduce: () => undefined,
  broadcast: () => undefined,
  barrier: () => undefined,
  gather: <T>(value: T) => [value],
  abort: (code: number): never => process.exit(code),
  finalize: () => undefined,
};

/**
 * A launcher (`segkit train --launcher <name>`): MMCV's launcher names `mpi` and `slurm` come from a
 * plugin, which declares them in its package.json (`"segkit": { "provides": { "launchers": [...] } }`)
 * and binds this contribution to `TOKENS.launchers`.
 */
export interface LauncherContribution {
  readonly launchers: readonly string[];
  /** Joins the process group of this launch; a clear SegkitError when it cannot (engine missing, not launched by it). */
  init(launcher: string, options: { logger: { info(message: string): void; warn(message: string): void } }): Communicator;
}

let current: Communicator = SINGLE_PROCESS;

/**
 * The process group of this run (torch.distributed's default group): the runner sets it, SyncBN reads
 * it. One process until a launcher's communicator is set.
 */
export function processGroup(): Communicator {
  return current;
}

export function setProcessGroup(communicator: Communicator | undefined): void {
  current = communicator ?? SINGLE_PROCESS;
}

/** Root's JSON value on every rank (length first, then the UTF-8 bytes). */
export function broadcastJson<T>(communicator: Communicator, value: T, root = 0): T {
  if (communicator.size === 1) return value;
  const bytes = communicator.rank === root ? new TextEncoder().encode(JSON.stringify(value)) : new Uint8Array(0);
  const length = new Float32Array([bytes.length]);
  // A length below 2^24 is exact in float32; larger values are not what this is for.
  if (bytes.length >= 2 ** 24) throw new Error(`broadcastJson: value too large (${bytes.length} bytes)`);
  communicator.broadcast(length, root);
  const buffer = communicator.rank === root ? bytes : new Uint8Array(length[0]!);
  communicator.broadcast(buffer, root);
  return JSON.parse(new TextDecoder().decode(buffer)) as T;
}
