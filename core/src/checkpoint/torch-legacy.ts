import * as fs from 'fs';
import { SegkitError } from '../errors';
import { PickleTruncatedError, PyDict, unpickleAt, type PickleValue, type UnpickleOptions } from './pickle-reader';
import { STORAGE_TYPES, storageTypeOf, type StorageRef, type StorageTypeName } from './torch-tensors';

/** `torch.serialization.MAGIC_NUMBER`: the first pickle of a legacy file. */
const LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
/** `torch.serialization.PROTOCOL_VERSION`, the second pickle. */
const LEGACY_PROTOCOL_VERSION = 1001;
/** The pickles at the head of a file are read from a prefix that grows until they all fit. */
const FIRST_PREFIX_BYTES = 1 << 20;

/** Where a root storage's bytes lie in the file (after its int64 element count). */
interface StorageRecord {
  type: StorageTypeName;
  /** Elements, as the persistent id and the on-disk header both say. */
  numel: number;
  position: number;
}

/** A storage that is a slice of another (files of PyTorch < 0.4): `length` elements of `root` from `offset`. */
interface StorageView {
  root: string;
  offset: number;
  length: number;
}

/** A legacy file opened: the object pickle's value and a reader of the storages it names. */
export interface LegacyCheckpoint {
  root: PickleValue;
  /** The bytes of a storage the object pickle named (little-endian, in a buffer of its own). */
  readStorage(ref: StorageRef, tensorName: string): Uint8Array;
  close(): void;
}

/**
 * Opens a checkpoint in the format torch.save wrote before PyTorch 1.6 (and writes with
 * `_use_new_zipfile_serialization=False`): five pickles in a row — the magic number, the protocol version
 * (1001), sys_info, the object, the sorted list of storage keys — then, for each key in that order, the
 * storage's element count (int64, little-endian) and its raw little-endian bytes. The object pickle's
 * persistent ids are `('storage', storage_type, root_key, location, numel, view_metadata)`, where
 * view_metadata `(view_key, offset, size)` (PyTorch < 0.4) makes the storage a slice of the root storage.
 * Every pickle goes through the restricted unpickler with `call`; storage bytes are read only when asked for.
 */
export function openLegacyCheckpoint(file: string, call: UnpickleOptions['call'], allowedGlobals: ReadonlySet<string>): LegacyCheckpoint {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const parsed = parseHead(file, fd, size, call, allowedGlobals);
    const records = locateStorages(file, fd, size, parsed.storageKeys, parsed.roots, parsed.dataStart);
    const cache = new Map<string, Uint8Array>();
    const readRoot = (key: string, tensorName: string): { bytes: Uint8Array; type: StorageTypeName } => {
      const record = records.get(key);
      if (!record) throw new SegkitError(`${file}: tensor '${tensorName}' refers to the storage '${key}', which the file's storage list lacks`);
      let bytes = cache.get(key);
      if (!bytes) {
        bytes = readExactly(fd, record.numel * STORAGE_TYPES[record.type].bytes, record.position);
        cache.set(key, bytes);
      }
      return { bytes, type: record.type };
    };
    return {
      root: parsed.root,
      readStorage(ref, tensorName) {
        const view = parsed.views.get(ref.key);
        if (!view) return readRoot(ref.key, tensorName).bytes;
        const { bytes, type } = readRoot(view.root, tensorName);
        const elementBytes = STORAGE_TYPES[type].bytes;
        const begin = view.offset * elementBytes;
        const end = begin + view.length * elementBytes;
        if (end > bytes.byteLength) {
          throw new SegkitError(`${file}: tensor '${tensorName}' uses the storage view '${ref.key}' (elements ${view.offset}..${view.offset + view.length}), past the end of its storage '${view.root}'`);
        }
        return bytes.subarray(begin, end);
      },
      close: () => fs.closeSync(fd),
    };
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
}

interface LegacyHead {
  root: PickleValue;
  storageKeys: string[];
  /** Root storages by key, as the persistent ids named them. */
  roots: Map<string, { type: StorageTypeName; numel: number }>;
  views: Map<string, StorageView>;
  /** The byte after the storage-keys pickle, where the first storage's element count starts. */
  dataStart: number;
}

/** Reads the five pickles from a prefix of the file, growing it until they fit (they are small beside the data). */
function parseHead(file: string, fd: number, size: number, call: UnpickleOptions['call'], allowedGlobals: ReadonlySet<string>): LegacyHead {
  for (let length = Math.min(size, FIRST_PREFIX_BYTES); ; length = Math.min(size, length * 4)) {
    const prefix = readExactly(fd, length, 0);
    try {
      return parsePickles(file, prefix, call, allowedGlobals);
    } catch (error) {
      if (!(error instanceof PickleTruncatedError) || length === size) throw error;
    }
  }
}

function parsePickles(file: string, bytes: Uint8Array, call: UnpickleOptions['call'], allowedGlobals: ReadonlySet<string>): LegacyHead {
  const roots = new Map<string, { type: StorageTypeName; numel: number }>();
  const views = new Map<string, StorageView>();
  const noPersistentIds = (): never => {
    throw new SegkitError(`${file}: a persistent id outside the object pickle of a legacy checkpoint`);
  };
  const headerOptions = (what: string): UnpickleOptions => ({ source: `${file} (${what})`, allowedGlobals, call, persistentLoad: noPersistentIds });

  const magic = unpickleAt(bytes, 0, headerOptions('magic number'));
  if (magic.value !== LEGACY_MAGIC_NUMBER) {
    throw new SegkitError(`${file}: not a PyTorch checkpoint (a pickle stream that does not start with torch.save's magic number)`);
  }
  const protocol = unpickleAt(bytes, magic.end, headerOptions('protocol version'));
  if (protocol.value !== LEGACY_PROTOCOL_VERSION) {
    throw new SegkitError(`${file}: legacy torch.save protocol version ${String(protocol.value)}, expected ${LEGACY_PROTOCOL_VERSION}`);
  }
  // sys_info describes the writing machine; the storage bytes are little-endian whatever it says (torch's
  // writeFileRaw converts), so only its presence is checked.
  const sysInfo = unpickleAt(bytes, protocol.end, headerOptions('sys_info'));
  if (!(sysInfo.value instanceof PyDict)) throw new SegkitError(`${file}: the legacy checkpoint's sys_info is not a dict`);

  const source = `${file} (object pickle)`;
  const persistentLoad = (pid: PickleValue): PickleValue => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || (pid.length !== 5 && pid.length !== 6)) {
      const kind = Array.isArray(pid) && typeof pid[0] === 'string' ? ` '${pid[0]}'` : '';
      throw new SegkitError(`${source}: unsupported persistent id${kind} (a whole pickled nn.Module? save its state_dict() instead)`);
    }
    const [, typeValue, rootKey, , numel, viewMetadata] = pid;
    const type = storageTypeOf(typeValue, source);
    if (typeof rootKey !== 'string' || !isNonNegativeInt(numel)) throw new SegkitError(`${source}: malformed storage persistent id`);
    const known = roots.get(rootKey);
    if (known && known.type !== type) throw new SegkitError(`${source}: the storage '${rootKey}' is named as ${known.type} and as ${type}`);
    if (!known) roots.set(rootKey, { type, numel });
    if (viewMetadata === undefined || viewMetadata === null) {
      const ref: StorageRef = { persistent: true, key: rootKey, type, numel };
      return ref;
    }
    const [viewKey, offset, length] = Array.isArray(viewMetadata) ? viewMetadata : [];
    if (typeof viewKey !== 'string' || !isNonNegativeInt(offset) || !isNonNegativeInt(length)) throw new SegkitError(`${source}: malformed storage view metadata`);
    if (!views.has(viewKey)) views.set(viewKey, { root: rootKey, offset, length });
    const ref: StorageRef = { persistent: true, key: viewKey, type, numel: length };
    return ref;
  };
  const object = unpickleAt(bytes, sysInfo.end, { source, allowedGlobals, call, persistentLoad });
  const keys = unpickleAt(bytes, object.end, headerOptions('storage keys'));
  if (!Array.isArray(keys.value) || !keys.value.every((key) => typeof key === 'string')) {
    throw new SegkitError(`${file}: the legacy checkpoint's storage keys are not a list of strings`);
  }
  return { root: object.value, storageKeys: keys.value as string[], roots, views, dataStart: keys.end };
}

/** Walks the storage records (int64 element count, then the bytes) in the order of the keys list. */
function locateStorages(
  file: string,
  fd: number,
  size: number,
  keys: readonly string[],
  roots: ReadonlyMap<string, { type: StorageTypeName; numel: number }>,
  dataStart: number,
): Map<string, StorageRecord> {
  const records = new Map<string, StorageRecord>();
  let position = dataStart;
  for (const key of keys) {
    const root = roots.get(key);
    if (!root) throw new SegkitError(`${file}: the storage list names '${key}', which no tensor in the checkpoint uses`);
    if (position + 8 > size) throw new SegkitError(`${file}: the legacy checkpoint is cut off at byte ${size}, before the storage '${key}'`);
    const header = Buffer.from(readExactly(fd, 8, position).buffer);
    const numel = header.readBigInt64LE(0);
    if (numel !== BigInt(root.numel)) {
      throw new SegkitError(`${file}: the storage '${key}' holds ${numel} elements on disk, but the pickle says ${root.numel}`);
    }
    const bytes = root.numel * STORAGE_TYPES[root.type].bytes;
    if (position + 8 + bytes > size) {
      throw new SegkitError(`${file}: the legacy checkpoint is cut off: the storage '${key}' needs bytes ${position + 8}..${position + 8 + bytes}, the file has ${size}`);
    }
    records.set(key, { type: root.type, numel: root.numel, position: position + 8 });
    position += 8 + bytes;
  }
  return records;
}

/** `length` bytes from `position` into a buffer of their own (aligned for typed-array views). */
function readExactly(fd: number, length: number, position: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const read = fs.readSync(fd, bytes, done, length - done, position + done);
    if (read === 0) break;
    done += read;
  }
  return done === length ? bytes : bytes.subarray(0, done);
}

function isNonNegativeInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}
