import * as os from 'os';
import { SegkitError } from '../errors';
import { createKernel, installedPluginManifests } from '../plugin-system/kernel';
import { TOKENS } from '../plugin-system/plugin';
import type { Logger } from '../plugin-system/registries';
import { SINGLE_PROCESS, type Communicator } from './communicator';

/** MMCV's launcher names; `pytorch` has no counterpart (segkit runs no torch.distributed). */
export const LAUNCHERS = ['none', 'mpi', 'slurm'] as const;

/**
 * Joins the process group of `--launcher <name>` through the installed plugin that declares the launcher
 * (`"segkit": { "provides": { "launchers": [...] } }`); `none` is one process.
 */
export async function startLauncher(name: string, logger: Logger): Promise<Communicator> {
  if (name === 'none') return SINGLE_PROCESS;
  if (!(LAUNCHERS as readonly string[]).includes(name)) throw new SegkitError(`--launcher: expected one of ${LAUNCHERS.join(', ')}, got '${name}'`);
  const manifests = [process.cwd(), __dirname]
    .flatMap((dir) => installedPluginManifests(dir))
    .filter((manifest, i, all) => manifest.provides.launchers?.includes(name) && all.findIndex((m) => m.name === manifest.name) === i);
  if (manifests.length === 0) {
    throw new SegkitError(`--launcher ${name}: no installed plugin provides it; install @segkit/dist-mpi (launchers mpi and slurm, on the system's Open MPI)`);
  }
  const kernel = await createKernel({ plugins: [manifests[0]!.name], backend: 'cpu', logger: { info: () => undefined, warn: (m) => logger.warn(m) } });
  const contribution = kernel.contributions(TOKENS.launchers).find((candidate) => candidate.launchers.includes(name));
  if (!contribution) throw new SegkitError(`--launcher ${name}: ${manifests[0]!.name} declares it but registers no launcher of that name`);
  return contribution.init(name, { logger });
}

/**
 * Threads per process for CPU backends when several ranks share a machine and SEGKIT_NUM_THREADS is not
 * set: the machine's hardware threads split evenly, so the ranks do not oversubscribe the cores.
 */
export function threadsPerRank(localSize: number, hardwareThreads = os.availableParallelism()): number {
  return Math.max(1, Math.floor(hardwareThreads / Math.max(1, localSize)));
}
