import * as fs from 'fs';
import { SegkitError } from '../errors';
import { writeFileAtomic } from './atomic-file';
import { PyDict, PyGlobal, unpickle, type PickleValue } from './pickle-reader';
import { pickle, PickleOrderedDict, PickleTensorRef, type PickleWritable } from './pickle-writer';
import { openLegacyCheckpoint } from './torch-legacy';
import { isTensorRef, materializeTensor, STORAGE_TYPES, storageTypeOf, swapByteOrder, type StorageRef, type TensorData, type TensorRef } from './torch-tensors';
import { ZipArchive } from './zip-archive';
import { ZipWriter } from './zip-writer';

/** What a `.pth` file held, with the weights in PyTorch's layout (convolutions OIHW). */
export interface TorchCheckpoint {
  file: string;
  /** The state dict by key, in the file's order. */
  tensors: Map<string, TensorData>;
  /** MMCV's `meta` (CLASSES, PALETTE, iter, ...) as plain JSON, or null. */
  meta: Record<string, unknown> | null;
  /** Where the weights were found: `state_dict`, `model`, or '' for a bare state dict. */
  weightsKey: string;
  /** What was left out and why (optimizer state, non-tensor entries), one line each. */
  notes: string[];
  /** The dicts of tensors asked for with `ReadTorchCheckpointOptions.sections`, by entry name. */
  sections: Map<string, Map<string, TensorData>>;
}

/** Where a `.pth` written by segkit keeps the optimizer's slots (MMCV's `optimizer` entry is PyTorch's own format). */
export const SEGKIT_OPTIMIZER_ENTRY = 'segkit_optimizer';

const STORAGE_GLOBALS = Object.keys(STORAGE_TYPES).map((name) => `torch.${name}`);
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
/** What PyTorch < 0.4 pickled tensors with: the same (storage, offset, size, stride) arguments. */
const REBUILD_TENSOR_V1 = 'torch._utils._rebuild_tensor';
const REBUILD_PARAMETER = 'torch._utils._rebuild_parameter';
const REBUILD_PARAMETER_WITH_STATE = 'torch._utils._rebuild_parameter_with_state';

/** Everything a torch/MMCV checkpoint may name; any other global is refused, never looked up. */
export const ALLOWED_TORCH_GLOBALS: ReadonlySet<string> = new Set([
  'collections.OrderedDict',
  REBUILD_TENSOR,
  REBUILD_TENSOR_V1,
  REBUILD_PARAMETER,
  REBUILD_PARAMETER_WITH_STATE,
  ...STORAGE_GLOBALS,
]);

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

function isNonNegativeInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

type ContainerFormat = 'zip' | 'legacy';

/**
 * The first bytes tell the containers apart: the zip archive torch.save writes since PyTorch 1.6, or the bare
 * pickle stream of the legacy format (PROTO opcode first). A tar archive (torch.save before PyTorch 0.4) and
 * anything else is an error.
 */
function detectFormat(file: string): ContainerFormat {
  if (!fs.existsSync(file)) throw new SegkitError(`checkpoint not found: ${file}`);
  const head = Buffer.alloc(262);
  const fd = fs.openSync(file, 'r');
  let read: number;
  try {
    read = fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (read >= 4 && ZIP_MAGIC.every((byte, i) => head[i] === byte)) return 'zip';
  if (read >= 2 && head[0] === 0x80 && head[1]! >= 2) return 'legacy';
  if (read >= 262 && head.toString('latin1', 257, 262) === 'ustar') {
    throw new SegkitError(
      `${file}: a tar-format checkpoint of PyTorch < 0.4, which segkit cannot read. Re-save it with a newer PyTorch: ` +
        `python -c "import torch; torch.save(torch.load('${file}', map_location='cpu'), 'resaved.pth')"`,
    );
  }
  throw new SegkitError(`${file}: not a PyTorch checkpoint (expected torch.save's zip format, or the legacy pickle format of PyTorch < 1.6)`);
}

/** Builds tensor references from the allowed callables (nothing is executed). */
function callAllowed(source: string): (callable: PyGlobal, args: PickleValue[]) => PickleValue {
  return (callable, args) => {
    const name = callable.qualifiedName;
    if (name === REBUILD_TENSOR || name === REBUILD_TENSOR_V1) {
      const [storage, offset, shape, stride] = args;
      const isStorage = typeof storage === 'object' && storage !== null && (storage as StorageRef).persistent === true;
      if (!isStorage || !isNonNegativeInt(offset) || !Array.isArray(shape) || !Array.isArray(stride) || !shape.every(isNonNegativeInt) || !stride.every(isNonNegativeInt) || shape.length !== stride.length) {
        throw new SegkitError(`${source}: malformed ${name} arguments`);
      }
      const ref: TensorRef = { tensor: true, storage: storage as StorageRef, offset, shape: shape as number[], stride: stride as number[] };
      return ref;
    }
    if (name === REBUILD_PARAMETER || name === REBUILD_PARAMETER_WITH_STATE) {
      if (!isTensorRef(args[0])) throw new SegkitError(`${source}: ${name} of something that is not a tensor`);
      return args[0];
    }
    // Storage classes are only ever named inside persistent ids, never called.
    throw new SegkitError(`${source}: the pickle calls ${name}, which a checkpoint never does`);
  };
}

function persistentLoad(source: string): (pid: PickleValue) => PickleValue {
  return (pid) => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new SegkitError(`${source}: unsupported persistent id ${JSON.stringify(toJson(pid))}`);
    const [, type, key, , numel] = pid;
    const storageType = storageTypeOf(type, source);
    if (typeof key !== 'string' || !isNonNegativeInt(numel)) throw new SegkitError(`${source}: malformed storage persistent id`);
    const ref: StorageRef = { persistent: true, key, type: storageType, numel };
    return ref;
  };
}

/** Unpickled data as plain JSON (dict keys become strings, bigints numbers or strings, tensors a summary). */
export function toJson(value: PickleValue): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Set) return [...value].map(toJson);
  if (value instanceof PyDict) return Object.fromEntries([...value.entries].map(([key, item]) => [String(key), toJson(item)]));
  if (value instanceof PyGlobal) return value.qualifiedName;
  if (isTensorRef(value)) return { tensor: STORAGE_TYPES[value.storage.type].dtype, shape: value.shape };
  return String(value);
}

/** Top-level entries holding optimizer state (MMCV's, and segkit's own in a .pth it wrote). */
const OPTIMIZER_ENTRIES = new Set(['optimizer', SEGKIT_OPTIMIZER_ENTRY]);
const OPTIMIZER_NOTE = 'optimizer state ignored (only the weights are loaded)';

/**
 * Picks the weights out of a checkpoint dict as MMCV does: `state_dict`, else `model`, else the dict itself.
 * `sections` name further top-level dicts of tensors the caller wants (not noted as ignored).
 */
function selectWeights(root: PickleValue, source: string, sections: ReadonlySet<string>): { weights: PyDict; weightsKey: string; meta: Record<string, unknown> | null; notes: string[] } {
  if (!(root instanceof PyDict)) throw new SegkitError(`${source}: expected a dict (a state dict or an MMCV checkpoint), found ${Array.isArray(root) ? 'a list' : typeof root}`);
  const notes: string[] = [];
  const metaValue = root.get('meta');
  const meta = metaValue instanceof PyDict ? (toJson(metaValue) as Record<string, unknown>) : null;
  for (const weightsKey of ['state_dict', 'model']) {
    const weights = root.get(weightsKey);
    if (weights instanceof PyDict) {
      for (const key of root.entries.keys()) {
        if (key === weightsKey || key === 'meta' || sections.has(String(key))) continue;
        notes.push(OPTIMIZER_ENTRIES.has(String(key)) ? OPTIMIZER_NOTE : `top-level entry '${String(key)}' ignored`);
      }
      return { weights, weightsKey, meta, notes };
    }
  }
  const bare = new PyDict(true);
  for (const [key, value] of root.entries) {
    if (isTensorRef(value)) bare.entries.set(key, value);
    else if (OPTIMIZER_ENTRIES.has(String(key))) notes.push(OPTIMIZER_NOTE);
    else if (key !== 'meta' && !sections.has(String(key))) notes.push(`entry '${String(key)}' is not a tensor and was ignored`);
  }
  return { weights: bare, weightsKey: '', meta, notes };
}

/** An opened checkpoint of either container format: the object pickle's value and its storages on demand. */
interface PickledCheckpoint {
  root: PickleValue;
  /** Names the object pickle in errors. */
  source: string;
  /** A storage's bytes, little-endian, in a buffer whose start is aligned for its element type. */
  storage(ref: StorageRef, tensorName: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

async function openZipCheckpoint(file: string): Promise<PickledCheckpoint> {
  const archive = await ZipArchive.open(file);
  try {
    const pickleName = archive.names().find((name) => /^[^/]+\/data\.pkl$/.test(name)) ?? archive.names().find((name) => name.endsWith('/data.pkl'));
    if (!pickleName) throw new SegkitError(`${file}: a zip archive without data.pkl is not a torch.save checkpoint`);
    const prefix = pickleName.slice(0, -'data.pkl'.length);
    const source = `${file} (${pickleName})`;
    let bigEndian = false;
    if (archive.has(`${prefix}byteorder`)) {
      const order = Buffer.from(await archive.read(`${prefix}byteorder`)).toString('latin1').trim();
      if (order !== 'little' && order !== 'big') throw new SegkitError(`${file}: unknown byteorder '${order}'`);
      bigEndian = order === 'big';
    }
    const root = unpickle(await archive.read(pickleName), { source, allowedGlobals: ALLOWED_TORCH_GLOBALS, call: callAllowed(source), persistentLoad: persistentLoad(source) });
    return {
      root,
      source,
      async storage(ref, tensorName) {
        const record = `${prefix}data/${ref.key}`;
        if (!archive.has(record)) throw new SegkitError(`${file}: tensor '${tensorName}' refers to the storage ${record}, which the archive lacks`);
        const bytes = await archive.read(record);
        if (bigEndian) swapByteOrder(bytes, STORAGE_TYPES[ref.type].bytes);
        return bytes;
      },
      close: () => archive.close(),
    };
  } catch (error) {
    await archive.close();
    throw error;
  }
}

function openCheckpointContainer(file: string): Promise<PickledCheckpoint> {
  if (detectFormat(file) === 'zip') return openZipCheckpoint(file);
  const source = `${file} (object pickle)`;
  const legacy = openLegacyCheckpoint(file, callAllowed(source), ALLOWED_TORCH_GLOBALS);
  return Promise.resolve({
    root: legacy.root,
    source,
    storage: async (ref, tensorName) => legacy.readStorage(ref, tensorName),
    close: async () => legacy.close(),
  });
}

export interface ReadTorchCheckpointOptions {
  /**
   * Top-level entries besides the weights that hold dicts of tensors to read as well (segkit's
   * `segkit_optimizer`); an absent one is left out of `sections`.
   */
  sections?: readonly string[];
}

/**
 * Reads a PyTorch checkpoint — torch.save's zip format (PyTorch >= 1.6) or its legacy format (before 1.6,
 * as MMCV's model-zoo backbones are) — the pickle through a restricted unpickler, then only the storages that
 * the kept tensors use. float16/bfloat16/float64 tensors come back as float32, integer and bool tensors as int32.
 */
export async function readTorchCheckpoint(file: string, options: ReadTorchCheckpointOptions = {}): Promise<TorchCheckpoint> {
  const container = await openCheckpointContainer(file);
  try {
    const wanted = new Set(options.sections ?? []);
    const { weights, weightsKey, meta, notes } = selectWeights(container.root, container.source, wanted);
    const storages = new Map<string, Uint8Array>();
    /** `where` prefixes the keys in notes; errors name a weight by its key, a section's tensor with `where`. */
    const materialize = async (dict: PyDict, where: string, qualify: boolean): Promise<Map<string, TensorData>> => {
      const tensors = new Map<string, TensorData>();
      for (const [key, value] of dict.entries) {
        const name = String(key);
        if (!isTensorRef(value)) {
          notes.push(`${where}${name} is not a tensor and was ignored`);
          continue;
        }
        const described = qualify ? `${where}${name}` : name;
        let bytes = storages.get(value.storage.key);
        if (!bytes) {
          bytes = await container.storage(value.storage, described);
          storages.set(value.storage.key, bytes);
        }
        tensors.set(name, materializeTensor(value, bytes, described, file));
      }
      return tensors;
    };
    const tensors = await materialize(weights, weightsKey ? `${weightsKey}.` : '', false);
    const sections = new Map<string, Map<string, TensorData>>();
    for (const name of wanted) {
      const section = (container.root as PyDict).get(name);
      if (section instanceof PyDict) sections.set(name, await materialize(section, `${name}.`, true));
      else if (section !== undefined) throw new SegkitError(`${file}: the entry '${name}' is not a dict of tensors`);
    }
    return { file, tensors, meta, weightsKey, notes, sections };
  } finally {
    await container.close();
  }
}

/** A checkpoint's MMCV `meta` as JSON (null when there is none), without reading any tensor data. */
export async function readTorchCheckpointMeta(file: string): Promise<Record<string, unknown> | null> {
  const container = await openCheckpointContainer(file);
  try {
    const meta = container.root instanceof PyDict ? container.root.get('meta') : undefined;
    return meta instanceof PyDict ? (toJson(meta) as Record<string, unknown>) : null;
  } finally {
    await container.close();
  }
}

export interface WriteTorchCheckpointOptions {
  /** MMCV's `meta` (CLASSES, PALETTE, iter, mmcv_version, ...): JSON values. */
  meta?: Record<string, unknown>;
  /** Further top-level entries, each an OrderedDict of tensors (segkit's `segkit_optimizer`). */
  sections?: Record<string, ReadonlyMap<string, TensorData>>;
}

/** JSON → pickle values: objects become dicts, arrays lists. */
function jsonToPickle(value: unknown, where: string): PickleWritable {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean' || typeof value === 'string' || typeof value === 'bigint') return value;
  if (typeof value === 'number') return value;
  if (Array.isArray(value)) return value.map((item, i) => jsonToPickle(item, `${where}.${i}`));
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, jsonToPickle(item, `${where}.${key}`)]));
  throw new SegkitError(`${where}: a ${typeof value} cannot be stored in a checkpoint's meta`);
}

/** int32 values widened to int64 (little-endian), the integer type PyTorch's buffers use. */
function widenToInt64(data: Int32Array): Uint8Array {
  const words = new Int32Array(data.length * 2);
  for (let i = 0; i < data.length; i++) {
    words[2 * i] = data[i]!;
    words[2 * i + 1] = data[i]! >> 31;
  }
  return new Uint8Array(words.buffer);
}

/**
 * Writes `tensors` (already in PyTorch's layout) as MMCV's checkpoint dict `{meta, state_dict}` (plus any
 * `sections`) in torch.save's zip format: float32 tensors as FloatStorage, int32 ones widened to int64
 * (LongStorage, e.g. `num_batches_tracked`). torch.load reads it, with `weights_only=True` too. Written
 * atomically (`writeFileAtomic`), so an interrupted save never leaves a truncated checkpoint.
 */
export function writeTorchCheckpoint(file: string, tensors: ReadonlyMap<string, TensorData>, options: WriteTorchCheckpointOptions = {}): void {
  const archiveName = 'archive';
  const payloads: Uint8Array[] = [];
  const pickleDict = (dict: ReadonlyMap<string, TensorData>, where: string): PickleOrderedDict => {
    const entries: [string, PickleWritable][] = [];
    for (const [name, tensor] of dict) {
      const count = tensor.shape.reduce((a, b) => a * b, 1);
      if (tensor.data.length !== count) throw new SegkitError(`${file}: tensor '${where}${name}' has ${tensor.data.length} values for shape [${tensor.shape}]`);
      const key = String(payloads.length);
      if (tensor.dtype === 'int32') {
        payloads.push(widenToInt64(tensor.data as Int32Array));
        entries.push([name, new PickleTensorRef('LongStorage', key, count, tensor.shape)]);
      } else {
        payloads.push(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
        entries.push([name, new PickleTensorRef('FloatStorage', key, count, tensor.shape)]);
      }
    }
    return new PickleOrderedDict(entries);
  };
  const root: Record<string, PickleWritable> = { meta: jsonToPickle(options.meta ?? {}, 'meta'), state_dict: pickleDict(tensors, '') };
  for (const [name, section] of Object.entries(options.sections ?? {})) {
    if (name in root) throw new SegkitError(`${file}: a section cannot be named '${name}'`);
    root[name] = pickleDict(section, `${name}.`);
  }
  writeFileAtomic(file, (fd) => {
    const zip = new ZipWriter(fd, file);
    zip.addRecord(`${archiveName}/data.pkl`, [pickle(root)]);
    zip.addRecord(`${archiveName}/byteorder`, [Buffer.from('little')]);
    payloads.forEach((payload, i) => zip.addRecord(`${archiveName}/data/${i}`, [payload]));
    zip.addRecord(`${archiveName}/version`, [Buffer.from('3\n')]);
    zip.finish();
  });
}
