/**
 * Recycles the float32 output arrays of disposed tensors on the `native` backend.
 *
 * A training step allocates the same output sizes every iteration; a fresh Float32Array per kernel
 * output costs page faults on first touch (large arrays are fresh mmap'd pages) and makes V8 run
 * full garbage collections for the external memory. The pool keeps the arrays of disposed outputs,
 * by length, and hands them to the next kernel output of that length (or of a little less, see take).
 *
 * Only arrays the pool itself created are ever recycled: a user's array passed to tf.tensor(), an
 * array a cpu kernel allocated or one read out by dataSync()/data() is never reused. An array is
 * recycled when no tensor data holds its ArrayBuffer any more: tensors share values through refCount
 * (reshape, identity), through one array under several data ids (in-place optimizer steps) and
 * through views (cpu's Slice returns a subarray), so holders are counted per ArrayBuffer, per data id
 * that stores it.
 *
 * Free arrays are kept only up to the most bytes of the pool's arrays ever held by tensors at once,
 * minus those held now, plus a headroom: live + free stays near the high-water mark of live, where a
 * fixed bound alone let the pool hold 0.9 GB of arrays of the wrong sizes at the peak of a PSPNet
 * training step, on top of its 3 GB of live tensors.
 */

/** How much longer than asked a reused free array may be (its tail unused while it is out). */
const MAX_REUSED_SLACK = 1.25;

/**
 * How far above the high-water mark of held bytes live + free may go. PSPNet b2 512² (2-core EPYC):
 * peak RSS 4017 MB at 512 MB, 3806 at 256, 3650 at 128, 3548 at 0, with a training iteration (b2 256²)
 * of 1981, 2093, 2331 and 3430 ms: the arrays dropped at the peak come back as page faults.
 */
export const PEAK_HEADROOM_BYTES = 256 * 2 ** 20;

/** Whether a taken array must read as zeros (the kernel accumulates) or is overwritten whole. */
export type InitialValues = 'zeroed' | 'overwritten';

/** Default bound on the bytes of disposed arrays kept for reuse (SEGKIT_NATIVE_POOL_MB overrides; 0 disables). */
export const DEFAULT_POOL_MB = 1024;
export const POOL_ENV = 'SEGKIT_NATIVE_POOL_MB';
/** Set to 1 to poison reused arrays (see BufferPool.poisonReused): an audit of every kernel test. */
export const POOL_POISON_ENV = 'SEGKIT_NATIVE_POOL_POISON';

export interface BufferPoolStats {
  /** Bytes of disposed arrays waiting for reuse. */
  freeBytes: number;
  /** Arrays handed out again instead of allocated. */
  reused: number;
  /** Arrays allocated because no free one of the length was kept. */
  allocated: number;
  /** Free arrays dropped (to the garbage collector) to keep freeBytes within its bound. */
  evicted: number;
  /** Bytes of the pool's arrays held by tensors now, and the most ever held at once. */
  inUseBytes: number;
  peakInUseBytes: number;
}

export class BufferPool {
  /** Free arrays by length; Map order is least recently used first (a touched length moves to the end). */
  private readonly free = new Map<number, Float32Array[]>();
  /** For each ArrayBuffer the pool created: how many tensor data entries hold it (0: free or in a kernel's hands). */
  private readonly holders = new WeakMap<ArrayBufferLike, number>();
  private readonly counters = { freeBytes: 0, reused: 0, allocated: 0, evicted: 0, inUseBytes: 0, peakInUseBytes: 0 };
  /**
   * For tests: fill reused arrays taken as 'overwritten' with NaN, so a kernel that reads its output
   * before writing all of it shows in a comparison against the cpu backend.
   */
  poisonReused = false;
  /**
   * Called with each array the pool drops, which V8 frees only at its next major GC: the native
   * backend hands its pages back to the kernel at once (the addon's releasePages).
   */
  onEvict?: (array: Float32Array) => void;

  constructor(
    private maxBytes: number,
    private readonly headroomBytes = PEAK_HEADROOM_BYTES,
  ) {}

  static fromEnvironment(env: NodeJS.ProcessEnv = process.env): BufferPool {
    const raw = env[POOL_ENV];
    const mb = raw === undefined || raw === '' ? DEFAULT_POOL_MB : Number(raw);
    if (!Number.isFinite(mb) || mb < 0) throw new Error(`${POOL_ENV}: expected a number of megabytes >= 0, got '${raw}'`);
    const pool = new BufferPool(mb * 2 ** 20);
    pool.poisonReused = env[POOL_POISON_ENV] === '1';
    return pool;
  }

  get stats(): BufferPoolStats {
    return { ...this.counters };
  }

  get capacityBytes(): number {
    return this.maxBytes;
  }

  /** Changes the bound (0 disables reuse), dropping free arrays beyond it. */
  setCapacityBytes(bytes: number): void {
    this.maxBytes = bytes;
    this.evictDownTo(bytes);
  }

  /**
   * A float32 array of `length` elements for a kernel output: a recycled one when the pool has one of
   * that length, or else the front of the smallest free one of up to MAX_REUSED_SLACK x (a view on its
   * buffer). Exact lengths alone left PSPNet's backward pass allocating afresh while the forward's free
   * arrays, a few sizes off, waited in the pool for the next iteration: that pool held 1 GB at the peak.
   */
  take(length: number, initial: InitialValues): Float32Array {
    // Buckets in `free` are never empty (touch and evictDownTo drop them).
    const capacity = this.free.has(length) ? length : this.closestLargerCapacity(length);
    const bucket = capacity === undefined ? undefined : this.free.get(capacity);
    const array = bucket?.pop();
    if (!array) {
      this.counters.allocated++;
      const fresh = new Float32Array(length);
      if (this.maxBytes > 0 && length > 0) this.holders.set(fresh.buffer, 0);
      return fresh;
    }
    this.counters.reused++;
    this.counters.freeBytes -= array.byteLength;
    this.touch(capacity!, bucket!);
    const values = array.length === length ? array : new Float32Array(array.buffer, 0, length);
    if (initial === 'zeroed') values.fill(0);
    else if (this.poisonReused) values.fill(NaN);
    return values;
  }

  /** The smallest length of free arrays in (length, MAX_REUSED_SLACK x length], if any. */
  private closestLargerCapacity(length: number): number | undefined {
    let best: number | undefined;
    for (const capacity of this.free.keys()) {
      if (capacity > length && capacity <= length * MAX_REUSED_SLACK && (best === undefined || capacity < best)) best = capacity;
    }
    return best;
  }

  /** A tensor data entry now stores `values` (tfjs write/move). */
  addHolder(values: unknown): void {
    const buffer = pooledBuffer(values);
    if (!buffer) return;
    const count = this.holders.get(buffer);
    if (count === undefined) return;
    this.holders.set(buffer, count + 1);
    if (count === 0) this.markHeld(buffer.byteLength);
  }

  /** A tensor data entry storing `values` was deleted; the array is free once no entry holds it. */
  dropHolder(values: unknown): void {
    const buffer = pooledBuffer(values);
    if (!buffer) return;
    const count = this.holders.get(buffer);
    if (count === undefined || count === 0) return;
    this.holders.set(buffer, count - 1);
    if (count === 1) this.release(new Float32Array(buffer));
  }

  /** Whether `values` lives in an array the pool may recycle. */
  owns(values: unknown): boolean {
    const buffer = pooledBuffer(values);
    return buffer !== null && this.holders.has(buffer);
  }

  /**
   * Takes `values`' array out of the pool for good: it is handed to a user (dataSync/data), who may
   * keep it after the tensor is gone. Cheaper than a copy, which costs a fresh allocation per read.
   */
  detach(values: unknown): void {
    const buffer = pooledBuffer(values);
    if (!buffer) return;
    if ((this.holders.get(buffer) ?? 0) > 0) this.counters.inUseBytes -= buffer.byteLength;
    this.holders.delete(buffer);
  }

  /** Drops every free array (backend dispose). */
  clear(): void {
    this.evictDownTo(0);
  }

  /** An array of `bytes` got its first holder: the free arrays shrink to the new bound. */
  private markHeld(bytes: number): void {
    this.counters.inUseBytes += bytes;
    this.counters.peakInUseBytes = Math.max(this.counters.peakInUseBytes, this.counters.inUseBytes);
    this.evictDownTo(this.freeBound());
  }

  /** The most free bytes the pool keeps now: within maxBytes and the room under the high-water mark (+ headroom). */
  private freeBound(): number {
    return Math.min(this.maxBytes, this.counters.peakInUseBytes - this.counters.inUseBytes + this.headroomBytes);
  }

  private release(array: Float32Array): void {
    this.counters.inUseBytes -= array.byteLength;
    if (array.byteLength > this.freeBound()) {
      this.drop(array);
      return;
    }
    this.evictDownTo(this.freeBound() - array.byteLength);
    const bucket = this.free.get(array.length) ?? [];
    bucket.push(array);
    this.touch(array.length, bucket);
    this.counters.freeBytes += array.byteLength;
  }

  private touch(length: number, bucket: Float32Array[]): void {
    this.free.delete(length);
    if (bucket.length > 0) this.free.set(length, bucket);
  }

  /** Lets go of an array for good (to the garbage collector, its pages to onEvict). */
  private drop(array: Float32Array): void {
    this.holders.delete(array.buffer);
    this.counters.evicted++;
    this.onEvict?.(array);
  }

  private evictDownTo(bytes: number): void {
    for (const [length, bucket] of this.free) {
      while (this.counters.freeBytes > bytes && bucket.length > 0) {
        const array = bucket.shift()!;
        this.counters.freeBytes -= array.byteLength;
        this.drop(array);
      }
      if (bucket.length === 0) this.free.delete(length);
      if (this.counters.freeBytes <= bytes) return;
    }
  }
}

function pooledBuffer(values: unknown): ArrayBufferLike | null {
  return ArrayBuffer.isView(values) ? values.buffer : null;
}

/**
 * A float32 output array for a kernel on `backend`: from its pool on the `native` backend (see
 * NativeBackend.outputBuffers), a fresh zero-filled one elsewhere.
 */
export function float32Output(backend: object, length: number, initial: InitialValues): Float32Array {
  const pool = (backend as { outputBuffers?: BufferPool }).outputBuffers;
  return pool ? pool.take(length, initial) : new Float32Array(length);
}
