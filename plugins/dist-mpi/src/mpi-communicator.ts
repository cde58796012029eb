import type { Communicator } from '@segkit/core';
import type { MpiAddon } from './addon';

/**
 * Floats per MPI_Allreduce call (16 MB). MPI counts are ints, and Open MPI allocates a temporary buffer
 * of the message's size per call: above glibc's 32 MB mmap threshold that is a fresh mapping, faulted in
 * page by page on every call. 29M floats in 64 MB chunks took ~4.3 s here, in 16 MB chunks ~0.5 s.
 */
export const DEFAULT_CHUNK_ELEMENTS = 2 ** 22;

export interface MpiCommunicatorOptions {
  chunkElements?: number;
  /** The log's description, from MPI's library version (the slurm launcher adds the job's). */
  describe?: (library: string) => string;
  /** The rank on this machine, when the launcher knows it better (SLURM_LOCALID). */
  localRank?: number;
}

/** core's Communicator on MPI_COMM_WORLD. */
export class MpiCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  readonly localRank: number;
  readonly localSize: number;
  readonly description: string;
  readonly library: string;
  private readonly chunkElements: number;
  private finalized = false;

  constructor(
    private readonly addon: MpiAddon,
    options: MpiCommunicatorOptions = {},
  ) {
    const info = addon.init();
    this.rank = info.rank;
    this.size = info.size;
    this.localRank = options.localRank ?? info.localRank;
    this.localSize = info.localSize;

    const library = info.library.split(", package")[0]!;
    this.library = library;
    this.description = options.describe ? options.describe(library) : `MPI: ${library}`;
    this.chunkElements = options.chunkElements ?? DEFAULT_CHUNK_ELEMENTS;
  }

  allreduce(buffer: Float32Array, op: 'sum' | 'mean'): void {
    if (this.size === 1 || buffer.length === 0) return;
    this.addon.allreduceFloat32(buffer, op === 'mean' ? 1 : 0, this.chunkElements);
  }

  broadcast(buffer: Float32Array | Uint8Array, root = 0): void {
    if (this.size === 1 || buffer.length === 0) return;
    this.addon.broadcast(buffer, root);
  }

  barrier(): void {
    if (this.size > 1) this.addon.barrier();
  }

  gather<T>(value: T, root = 0): T[] | undefined {
    if (this.size === 1) return [value];
    const parts = this.addon.gatherBytes(new TextEncoder().encode(JSON.stringify(value) ?? 'null'), root);
    return parts?.map((bytes) => JSON.parse(new TextDecoder().decode(bytes)) as T);
  }

  abort(code: number): never {
    this.addon.abort(code);
    // MPI_Abort does not return; should a library return anyway, this process still ends.
    process.exit(code);
  }

  finalize(): void {
    if (this.finalized) return;
    this.finalized = true;
    this.addon.finalize();
  }
}
