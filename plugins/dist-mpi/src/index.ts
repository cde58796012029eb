import { definePlugin, SegkitError, type Communicator, type LauncherContribution } from '@segkit/core';
import { loadMpiAddon } from './addon';
import { MpiCommunicator } from './mpi-communicator';
import { checkSlurmMatchesMpi, readSlurmTask } from './slurm';

export { loadMpiAddon, DEFAULT_ADDON_PATHS, type MpiAddon, type AddonLoadResult } from './addon';
export { MpiCommunicator, DEFAULT_CHUNK_ELEMENTS, type MpiCommunicatorOptions } from './mpi-communicator';
export { readSlurmTask, checkSlurmMatchesMpi, type SlurmTask } from './slurm';

const { version } = require('../../package.json') as { version: string };

/** Joins MPI_COMM_WORLD: `mpi` as mpirun started this process, `slurm` as srun did (checked against SLURM's variables). */
export function initMpi(launcher: string): Communicator {
  const loaded = loadMpiAddon();
  if (!loaded.addon) throw new SegkitError(`--launcher ${launcher}: ${loaded.reason}`);
  if (launcher === 'slurm') {
    const task = readSlurmTask();
    const communicator = new MpiCommunicator(loaded.addon, {
      localRank: task.localId,
      describe: (library) => `MPI under Slurm, ${task.ntasks} tasks on ${task.nodeList}: ${library}`,
    });
    checkSlurmMatchesMpi(task, communicator);
    return communicator;
  }
  return new MpiCommunicator(loaded.addon);
}

export const mpiLauncher: LauncherContribution = {
  launchers: ['mpi', 'slurm'],
  init: (launcher) => initMpi(launcher),
};

export const plugin = definePlugin({ name: '@segkit/dist-mpi', version, components: {}, launchers: [mpiLauncher] });
