import * as fs from 'fs';
import * as path from 'path';
import { SegkitError } from '../errors';
import { PyDict, PyGlobal, unpickle, type PickleValue } from './pickle-reader';
import { pickle, PickleOrderedDict, PickleTensorRef, type PickleWritable } from './pickle-writer';
import { isTensorRef, materializeTensor, STORAGE_TYPES, swapByteOrder, type StorageRef, type StorageTypeName, type TensorData, type TensorRef } from './torch-tensors';
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
}

const STORAGE_GLOBALS = Object.keys(STORAGE_TYPES).map((name) => `torch.${name}`);
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const REBUILD_PARAMETER = 'torch._utils._rebuild_parameter';
const REBUILD_PARAMETER_WITH_STATE = 'torch._utils._rebuild_parameter_with_state';

/** Everything a torch/MMCV checkpoint may name; any other global is refused, never looked up. */
export const ALLOWED_TORCH_GLOBALS: ReadonlySet<string> = new Set([
  'collections.OrderedDict',
  REBUILD_TENSOR,
  REBUILD_PARAMETER,
  REBUILD_PARAMETER_WITH_STATE,
  ...STORAGE_GLOBALS,
]);

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

function isNonNegativeInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/**
 * The first bytes tell a zip checkpoint from a legacy one: before PyTorch 1.6 torch.save wrote a bare
 * pickle stream (starting with the PROTO opcode), which segkit does not parse.
 */
function checkFormat(file: string): void {
  if (!fs.existsSync(file)) throw new SegkitError(`checkpoint not found: ${file}`);
  const head = Buffer.alloc(4);
  const fd = fs.openSync(file, 'r');
  let read: number;
  try {
    read = fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (read === 4 && ZIP_MAGIC.every((byte, i) => head[i] === byte)) return;
  if (read >= 1 && head[0] === 0x80) {
    throw new SegkitError(
      `${file}: a legacy (pre-1.6) PyTorch checkpoint, which segkit cannot read. Re-save it in the zip format with PyTorch >= 1.6: ` +
        `python -c "import torch; torch.save(torch.load('${file}', map_location='cpu'), 'resaved.pth', _use_new_zipfile_serialization=True)"`,
    );
  }
  throw new SegkitError(`${file}: not a PyTorch checkpoint (expected the zip format torch.save writes since PyTorch 1.6)`);
}

/** Builds tensor references from the allowed callables (nothing is executed). */
function callAllowed(source: string): (callable: PyGlobal, args: PickleValue[]) => PickleValue {
  return (callable, args) => {
    const name = callable.qualifiedName;
    if (name === REBUILD_TENSOR) {
      const [storage, offset, shape, stride] = args;
      const isStorage = typeof storage === 'object' && storage !== null && (storage as StorageRef).persistent === true;
      if (!isStorage || !isNonNegativeInt(offset) || !Array.isArray(shape) || !Array.isArray(stride) || !shape.every(isNonNegativeInt) || !stride.every(isNonNegativeInt) || shape.length !== stride.length) {
        throw new SegkitError(`${source}: malformed ${REBUILD_TENSOR} arguments`);
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
    if (!(type instanceof PyGlobal) || type.module !== 'torch' || !(type.name in STORAGE_TYPES)) {
      throw new SegkitError(`${source}: unsupported storage type in a persistent id`);
    }
    if (typeof key !== 'string' || !isNonNegativeInt(numel)) throw new SegkitError(`${source}: malformed storage persistent id`);
    const ref: StorageRef = { persistent: true, key, type: type.name as StorageTypeName, numel };
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

/** Picks the weights out of a checkpoint dict as MMCV does: `state_dict`, else `model`, else the dict itself. */
function selectWeights(root: PickleValue, source: string): { weights: PyDict; weightsKey: string; meta: Record<string, unknown> | null; notes: string[] } {
  if (!(root instanceof PyDict)) throw new SegkitError(`${source}: expected a dict (a state dict or an MMCV checkpoint), found ${Array.isArray(root) ? 'a list' : typeof root}`);
  const notes: string[] = [];
  const metaValue = root.get('meta');
  const meta = metaValue instanceof PyDict ? (toJson(metaValue) as Record<string, unknown>) : null;
  for (const weightsKey of ['state_dict', 'model']) {
    const weights = root.get(weightsKey);
    if (weights instanceof PyDict) {
      for (const key of root.entries.keys()) {
        if (key === weightsKey || key === 'meta') continue;
        notes.push(key === 'optimizer' ? `optimizer state ignored (segkit loads weights only from a .pth)` : `top-level entry '${String(key)}' ignored`);
      }
      return { weights, weightsKey, meta, notes };
    }
  }
  const bare = new PyDict(true);
  for (const [key, value] of root.entries) {
    if (isTensorRef(value)) bare.entries.set(key, value);
    else if (key === 'optimizer') notes.push('optimizer state ignored (segkit loads weights only from a .pth)');
    else if (key !== 'meta') notes.push(`entry '${String(key)}' is not a tensor and was ignored`);
  }
  return { weights: bare, weightsKey: '', meta, notes };
}

/**
 * Reads a PyTorch checkpoint (the zip format of torch.save since 1.6): the pickle through a restricted
 * unpickler, then only the storages that the state dict's tensors use. float16/bfloat16/float64 tensors
 * come back as float32, integer and bool tensors as int32.
 */
export async function readTorchCheckpoint(file: string): Promise<TorchCheckpoint> {
  checkFormat(file);
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
    const root = unpickle(await archive.read(pickleName), {
      source,
      allowedGlobals: ALLOWED_TORCH_GLOBALS,
      call: callAllowed(source),
      persistentLoad: persistentLoad(source),
    });
    const { weights, weightsKey, meta, notes } = selectWeights(root, source);
    const storages = new Map<string, Uint8Array>();
    const tensors = new Map<string, TensorData>();
    const where = weightsKey ? `${weightsKey}.` : '';
    for (const [key, value] of weights.entries) {
      const name = String(key);
      if (!isTensorRef(value)) {
        notes.push(`${where}${name} is not a tensor and was ignored`);
        continue;
      }
      let bytes = storages.get(value.storage.key);
      if (!bytes) {
        const record = `${prefix}data/${value.storage.key}`;
        if (!archive.has(record)) throw new SegkitError(`${file}: tensor '${name}' refers to the storage ${record}, which the archive lacks`);
        bytes = await archive.read(record);
        if (bigEndian) swapByteOrder(bytes, STORAGE_TYPES[value.storage.type].bytes);
        storages.set(value.storage.key, bytes);
      }
      tensors.set(name, materializeTensor(value, bytes, name, file));
    }
    return { file, tensors, meta, weightsKey, notes };
  } finally {
    await archive.close();
  }
}

export interface WriteTorchCheckpointOptions {
  /** MMCV's `meta` (CLASSES, PALETTE, iter, mmcv_version, ...): JSON values. */
  meta?: Record<string, unknown>;
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
 * Writes `tensors` (already in PyTorch's layout) as MMCV's checkpoint dict `{meta, state_dict}` in
 * torch.save's zip format: float32 tensors as FloatStorage, int32 ones widened to int64 (LongStorage, e.g.
 * `num_batches_tracked`). torch.load reads it, with `weights_only=True` too. Written to a temporary file in
 * the same folder and renamed, so an interrupted save never leaves a truncated checkpoint.
 */
export function writeTorchCheckpoint(file: string, tensors: ReadonlyMap<string, TensorData>, options: WriteTorchCheckpointOptions = {}): void {
  const archiveName = 'archive';
  const entries: [string, PickleWritable][] = [];
  const payloads: Uint8Array[] = [];
  for (const [name, tensor] of tensors) {
    const count = tensor.shape.reduce((a, b) => a * b, 1);
    if (tensor.data.length !== count) throw new SegkitError(`${file}: tensor '${name}' has ${tensor.data.length} values for shape [${tensor.shape}]`);
    const key = String(payloads.length);
    if (tensor.dtype === 'int32') {
      payloads.push(widenToInt64(tensor.data as Int32Array));
      entries.push([name, new PickleTensorRef('LongStorage', key, count, tensor.shape)]);
    } else {
      payloads.push(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
      entries.push([name, new PickleTensorRef('FloatStorage', key, count, tensor.shape)]);
    }
  }
  const root: PickleWritable = { meta: jsonToPickle(options.meta ?? {}, 'meta'), state_dict: new PickleOrderedDict(entries) };
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const temporary = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(temporary, 'w');
  try {
    const zip = new ZipWriter(fd, file);
    zip.addRecord(`${archiveName}/data.pkl`, [pickle(root)]);
    zip.addRecord(`${archiveName}/byteorder`, [Buffer.from('little')]);
    payloads.forEach((payload, i) => zip.addRecord(`${archiveName}/data/${i}`, [payload]));
    zip.addRecord(`${archiveName}/version`, [Buffer.from('3\n')]);
    zip.finish();
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(temporary, { force: true });
    throw error;
  }
  fs.closeSync(fd);
  fs.renameSync(temporary, file);
}
