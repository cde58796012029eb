import * as fs from 'node:fs';
import * as path from 'node:path';

/** The compiled binding (native/mpi_addon.cc). */
export interface MpiAddon {
  init(): { rank: number; size: number; localRank: number; localSize: number; threadLevel: number; library: string };
  finalize(): void;
  allreduceFloat32(buffer: Float32Array, mean: 0 | 1, chunkElements: number): void;
  broadcast(buffer: ArrayBufferView, root: number): void;
  barrier(): void;
  gatherBytes(bytes: Uint8Array, root: number): Uint8Array[] | undefined;
  abort(code: number): void;
  wtime(): number;
}

/** Where node-gyp leaves the addon, relative to this file (dist/src/). */
export const DEFAULT_ADDON_PATHS: readonly string[] = [
  path.resolve(__dirname, '../../build/Release/segkit_mpi.node'),
  path.resolve(__dirname, '../../build/Debug/segkit_mpi.node'),
];

export type AddonLoadResult = { addon: MpiAddon; reason?: undefined } | { addon?: undefined; reason: string };

let cached: AddonLoadResult | undefined;

/** Loads the compiled binding; never throws: a missing or broken build yields a one-line reason. */
export function loadMpiAddon(candidates: readonly string[] = DEFAULT_ADDON_PATHS): AddonLoadResult {
  if (cached && candidates === DEFAULT_ADDON_PATHS) return cached;
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  let result: AddonLoadResult;
  if (!found) {
    result = { reason: 'the MPI binding is not built (no MPI or no C++ toolchain at install): install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev), then `npm rebuild @segkit/dist-mpi`' };
  } else {
    try {
      result = { addon: require(found) as MpiAddon };
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      result = { reason: `the MPI binding failed to load (${message}); rebuild it with \`npm rebuild @segkit/dist-mpi\`` };
    }
  }
  if (candidates === DEFAULT_ADDON_PATHS) cached = result;
  return result;
}
