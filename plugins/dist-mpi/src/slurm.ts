import { SegkitError } from '@segkit/core';

/** What MMCV's `_init_dist_slurm` reads: the task's rank, the task count and the node list; plus the task's rank on its node. */
export interface SlurmTask {
  procId: number;
  ntasks: number;
  nodeList: string;
  localId: number;
}

function integerVariable(env: NodeJS.ProcessEnv, name: string): number {
  const raw = env[name];
  if (raw === undefined) throw new SegkitError(`--launcher slurm: ${name} is not set; start the job with srun (e.g. srun -N 2 --ntasks-per-node 4 --mpi=pmix npx segkit train CONFIG --launcher slurm)`);
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new SegkitError(`--launcher slurm: ${name} is '${raw}', expected a non-negative integer`);
  return value;
}

/** The SLURM variables of this task (MMCV reads SLURM_PROCID, SLURM_NTASKS and SLURM_NODELIST; the local rank is SLURM_LOCALID). */
export function readSlurmTask(env: NodeJS.ProcessEnv = process.env): SlurmTask {
  const procId = integerVariable(env, 'SLURM_PROCID');
  const ntasks = integerVariable(env, 'SLURM_NTASKS');
  if (ntasks < 1 || procId >= ntasks) throw new SegkitError(`--launcher slurm: SLURM_PROCID ${procId} is not below SLURM_NTASKS ${ntasks}`);
  const localId = env.SLURM_LOCALID === undefined ? 0 : integerVariable(env, 'SLURM_LOCALID');
  return { procId, ntasks, nodeList: env.SLURM_NODELIST ?? env.SLURM_JOB_NODELIST ?? '?', localId };
}

/**
 * Under srun, MPI is wired up by Slurm's PMI (srun --mpi=pmix with Open MPI): MPI's rank and size must be
 * SLURM's. When they are not, each task initialised MPI on its own (a singleton), and training would
 * silently run N independent copies: a clear error instead.
 */
export function checkSlurmMatchesMpi(task: SlurmTask, mpi: { rank: number; size: number }): void {
  if (task.procId === mpi.rank && task.ntasks === mpi.size) return;
  throw new SegkitError(
    `--launcher slurm: srun started ${task.ntasks} tasks (this is task ${task.procId}) but MPI sees ${mpi.size} process${mpi.size === 1 ? '' : 'es'} (rank ${mpi.rank}): start the job with srun --mpi=pmix (see \`srun --mpi=list\`) so that MPI joins the tasks, or use mpirun and --launcher mpi`,
  );
}
