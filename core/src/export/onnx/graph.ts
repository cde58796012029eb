import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../../errors';
import type { Module } from '../../nn/module';
import type { InterpolationMode } from '../../nn/resize';
import { ATTRIBUTE_TYPE, ONNX_DTYPE, encodeOnnxModel, type OnnxInitializerBytes } from './proto';
import type {
  OnnxAttributeValue,
  OnnxDim,
  OnnxDtype,
  OnnxExportContext,
  OnnxExportable,
  OnnxFloatAttribute,
  OnnxFloatsAttribute,
  OnnxNodeOptions,
  OnnxSize,
  OnnxValue,
} from './types';

/** segkit writes opset 13 (ONNX 1.8, IR version 7): every operator the shipped models need, and what onnxruntime(-web) and TensorRT read. */
export const ONNX_OPSET = 13;
const IR_VERSION = 7;

interface NodeRecord {
  op_type: string;
  name: string;
  input: string[];
  output: string[];
  attribute: Record<string, unknown>[];
}

interface InitializerRecord {
  name: string;
  tensor: tf.Tensor;
  owned: boolean;
  permutation?: readonly number[];
  dims: number[];
}

interface ConstantRecord {
  name: string;
  dims: number[];
  dtype: 'float32' | 'int64';
  values: readonly number[];
}

/** A graph input: a dim given as a string is symbolic (ONNX's dim_param), known only at run time. */
export interface OnnxGraphInput {
  name: string;
  shape: readonly (number | string)[];
  dtype?: OnnxDtype;
}

export interface OnnxModelSpec {
  inputs: readonly OnnxGraphInput[];
  /** Builds the graph from the input values; returns the outputs in the order of `outputs`. */
  build(ctx: OnnxExportContext, ...inputs: OnnxValue[]): OnnxValue | OnnxValue[];
  /** Names of the graph outputs, with symbolic names for dims not known at export time. */
  outputs: readonly { name: string; dims?: readonly (string | null)[] }[];
  /** ModelProto.metadata_props. */
  metadata?: Readonly<Record<string, string>>;
  producerVersion?: string;
  docString?: string;
}

function isExportable(module: Module): module is Module & OnnxExportable {
  return typeof (module as Partial<OnnxExportable>).exportOnnx === 'function';
}

/**
 * Builds an ONNX graph by walking a module tree: each module's `exportOnnx` emits its nodes through this
 * context. Node names carry the module path (`backbone.layer1.0.conv1/Conv`); initializers carry the
 * state-dict names (`backbone.layer1.0.conv1.weight`).
 */
export class OnnxGraphBuilder implements OnnxExportContext {
  readonly opset = ONNX_OPSET;
  private readonly paths = new Map<Module, string>();
  private readonly scopes: { path: string; module: Module }[] = [];
  private readonly usedNames = new Set<string>();
  private readonly nodes: NodeRecord[] = [];
  private readonly initializers: InitializerRecord[] = [];
  private readonly initializerValues = new Map<string, OnnxValue>();
  private readonly constants: ConstantRecord[] = [];
  private readonly graphInputs: Record<string, unknown>[] = [];
  private readonly graphOutputs: Record<string, unknown>[] = [];

  constructor(readonly root: Module) {
    for (const [path, module] of root.namedModules()) this.paths.set(module, path);
  }

  // ------------------------------------------------------------ module tree

  call<R = OnnxValue>(module: Module, ...inputs: unknown[]): R {
    const path = this.paths.get(module) ?? `${this.currentScope()?.path ?? ''}<${module.constructor.name}>`;
    this.scopes.push({ path, module });
    try {
      if (!isExportable(module)) {
        this.unsupported(
          'has no ONNX export: give its class an exportOnnx(ctx, ...inputs) method that emits its nodes (see "Export" in the README)',
        );
      }
      return module.exportOnnx(this, ...inputs) as R;
    } finally {
      this.scopes.pop();
    }
  }

  unsupported(reason: string): never {
    const scope = this.currentScope();
    const where = scope ? `${scope.path ? `module '${scope.path}'` : 'the model'} (${scope.module.constructor.name})` : 'the model';
    throw new SegkitError(`export onnx: ${where} ${reason}`, scope?.path || undefined);
  }

  private currentScope(): { path: string; module: Module } | undefined {
    return this.scopes[this.scopes.length - 1];
  }

  // ------------------------------------------------------------ values and nodes

  private uniqueName(base: string): string {
    let name = base;
    for (let k = 1; this.usedNames.has(name); k++) name = `${base}_${k}`;
    this.usedNames.add(name);
    return name;
  }

  input(spec: OnnxGraphInput): OnnxValue {
    const dtype = spec.dtype ?? 'float32';
    const name = this.uniqueName(spec.name);
    this.graphInputs.push(valueInfo(name, dtype, spec.shape));
    return { name, dtype, shape: spec.shape.map((d) => (typeof d === 'number' ? d : null)) };
  }

  /** Marks a value as a graph output named `name` (through an Identity node when it has another name). */
  output(value: OnnxValue, name: string, dims?: readonly (string | null)[]): void {
    let output = value;
    if (value.name !== name) {
      if (this.usedNames.has(name)) throw new Error(`ONNX output name '${name}' is already used in the graph`);
      this.usedNames.add(name);
      this.nodes.push({ op_type: 'Identity', name: `output/${name}`, input: [value.name], output: [name], attribute: [] });
      output = { ...value, name };
    }
    const shape = output.shape.map((d, i) => (d !== null ? d : (dims?.[i] ?? `${name}_dim${i}`)));
    this.graphOutputs.push(valueInfo(name, output.dtype, shape));
  }

  node(opType: string, inputs: readonly (OnnxValue | null)[], options: OnnxNodeOptions): OnnxValue {
    const scope = this.currentScope()?.path ?? '';
    const name = this.uniqueName(scope ? `${scope}/${opType}` : opType);
    const attribute = Object.entries(options.attributes ?? {}).map(([key, value]) => encodeAttribute(key, value, name));
    // Trailing omitted optional inputs are dropped; inner ones are the empty name (ONNX's convention).
    const names = inputs.map((value) => value?.name ?? '');
    while (names.length && names[names.length - 1] === '') names.pop();
    this.nodes.push({ op_type: opType, name, input: names, output: [name], attribute });
    return { name, shape: [...options.shape], dtype: options.dtype ?? 'float32' };
  }

  initializer(localName: string, tensor: tf.Tensor, options: { permutation?: readonly number[]; shape?: readonly number[] } = {}): OnnxValue {
    const scope = this.currentScope()?.path ?? '';
    const key = scope ? `${scope}.${localName}` : localName;
    // A module exported twice (shared, or called in a loop) reuses its weights rather than copying them.
    const known = this.initializerValues.get(key);
    if (known) {
      if (!(tensor instanceof tf.Variable)) tensor.dispose();
      return known;
    }
    const name = this.uniqueName(key);
    const dtype = tensor.dtype === 'int32' ? 'int32' : 'float32';
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32') throw new Error(`ONNX initializer ${name}: unsupported dtype ${tensor.dtype}`);
    const { permutation } = options;
    if (permutation && (permutation.length !== tensor.rank || [...permutation].sort().some((axis, i) => axis !== i))) {
      throw new Error(`ONNX initializer ${name}: [${permutation.join(',')}] is not a permutation of the ${tensor.rank} axes`);
    }
    const permuted = permutation ? permutation.map((axis) => tensor.shape[axis]!) : [...tensor.shape];
    const dims = options.shape ? [...options.shape] : permuted;
    if (dims.reduce((a, b) => a * b, 1) !== tensor.size) throw new Error(`ONNX initializer ${name}: shape [${dims.join(',')}] does not hold ${tensor.size} values`);
    this.initializers.push({ name, tensor, owned: !(tensor instanceof tf.Variable), permutation, dims });
    const value: OnnxValue = { name, shape: dims, dtype };
    this.initializerValues.set(key, value);
    return value;
  }

  constant(values: readonly number[], dims: readonly number[], dtype: 'float32' | 'int64' = 'float32'): OnnxValue {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== values.length) throw new Error(`ONNX constant: ${values.length} values for shape [${dims.join(',')}]`);
    if (dtype === 'int64' && !values.every(Number.isInteger)) throw new Error(`ONNX int64 constant with non-integer values [${values.join(',')}]`);
    const scope = this.currentScope()?.path ?? '';
    const name = this.uniqueName(scope ? `${scope}/const` : 'const');
    this.constants.push({ name, dims: [...dims], dtype, values: [...values] });
    return { name, shape: [...dims], dtype };
  }

  float(value: number): OnnxFloatAttribute {
    return { float: value };
  }

  floats(values: readonly number[]): OnnxFloatsAttribute {
    return { floats: [...values] };
  }

  // ------------------------------------------------------------ shared glue

  cast(x: OnnxValue, dtype: OnnxDtype): OnnxValue {
    return x.dtype === dtype ? x : this.node('Cast', [x], { attributes: { to: ONNX_DTYPE[dtype] }, shape: x.shape, dtype });
  }

  add(a: OnnxValue, b: OnnxValue): OnnxValue {
    return this.node('Add', [a, b], { shape: broadcastShape(a.shape, b.shape), dtype: a.dtype });
  }

  concat(values: readonly OnnxValue[], axis: number): OnnxValue {
    if (values.length === 1) return values[0]!;
    const rank = values[0]!.shape.length;
    const shape: OnnxDim[] = [];
    for (let d = 0; d < rank; d++) {
      const dims = values.map((v) => v.shape[d] ?? null);
      if (d === axis) shape.push(dims.every((x) => x !== null) ? (dims as number[]).reduce((s, x) => s + x, 0) : null);
      else shape.push(dims.find((x) => x !== null) ?? null);
    }
    return this.node('Concat', values, { attributes: { axis }, shape, dtype: values[0]!.dtype });
  }

  dimension(x: OnnxValue, axis: number): OnnxValue {
    return this.slice1d(this.node('Shape', [x], { shape: [x.shape.length], dtype: 'int64' }), axis, axis + 1);
  }

  spatialSize(x: OnnxValue): OnnxSize {
    const [, , h, w] = x.shape;
    if (typeof h === 'number' && typeof w === 'number') return [h, w];
    return this.slice1d(this.node('Shape', [x], { shape: [x.shape.length], dtype: 'int64' }), 2, 4);
  }

  resize(x: OnnxValue, size: OnnxSize, options: { mode?: InterpolationMode; alignCorners?: boolean } = {}): OnnxValue {
    const { mode = 'bilinear', alignCorners = false } = options;
    const [n, c, h, w] = x.shape;
    const staticSize = isStaticSize(size) ? size : null;
    if (staticSize && h === staticSize[0] && w === staticSize[1]) return x;
    // Output sizes rather than scales: the coordinate transform then uses in/out, as segkit's resize (and
    // PyTorch's F.interpolate with `size`) does, and no float rounding can change the output size.
    const batchAndChannels = this.slice1d(this.node('Shape', [x], { shape: [4], dtype: 'int64' }), 0, 2);
    const sizes = this.concat([batchAndChannels, this.sizeValue(size)], 0);
    const attributes: Record<string, OnnxAttributeValue> =
      mode === 'nearest'
        ? // PyTorch's legacy nearest: source index floor(dst · in/out).
          { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }
        : // align_corners=False is the half-pixel transform; edge clamping matches PyTorch's clamp at 0.
          { mode: 'linear', coordinate_transformation_mode: alignCorners ? 'align_corners' : 'half_pixel' };
    return this.node('Resize', [x, null, null, sizes], {
      attributes,
      shape: [n ?? null, c ?? null, staticSize ? staticSize[0] : null, staticSize ? staticSize[1] : null],
      dtype: x.dtype,
    });
  }

  scaleSize(size: OnnxSize, factor: number): OnnxSize {
    if (isStaticSize(size)) return [Math.floor(size[0] * factor), Math.floor(size[1] * factor)];
    if (Number.isInteger(factor)) return this.node('Mul', [size, this.constant([factor], [1], 'int64')], { shape: [2], dtype: 'int64' });
    const scaled = this.node('Mul', [this.cast(size, 'float32'), this.constant([factor], [1])], { shape: [2] });
    return this.cast(this.node('Floor', [scaled], { shape: [2] }), 'int64');
  }

  /** A spatial size as an int64 [2] value. */
  sizeValue(size: OnnxSize): OnnxValue {
    return isStaticSize(size) ? this.constant([size[0], size[1]], [2], 'int64') : size;
  }

  /** Elements [start, end) of a 1-D value. */
  slice1d(x: OnnxValue, start: number, end: number): OnnxValue {
    return this.node('Slice', [x, this.constant([start], [1], 'int64'), this.constant([end], [1], 'int64'), this.constant([0], [1], 'int64')], {
      shape: [end - start],
      dtype: x.dtype,
    });
  }

  // ------------------------------------------------------------ serialization

  /** The ModelProto's bytes; reads every initializer (asynchronously). */
  async serialize(spec: { metadata?: Readonly<Record<string, string>>; producerVersion?: string; docString?: string; graphName?: string } = {}): Promise<Uint8Array> {
    const initializers: OnnxInitializerBytes[] = [];
    for (const { name, tensor, permutation, dims } of this.initializers) {
      const data = (await tensor.data()) as Float32Array | Int32Array;
      const values = permutation ? permute(data, tensor.shape, permutation) : data;
      initializers.push({ tensor: { name, dims, data_type: ONNX_DTYPE[tensor.dtype === 'int32' ? 'int32' : 'float32'] }, rawData: littleEndianBytes(values) });
    }
    for (const { name, dims, dtype, values } of this.constants) {
      const raw = dtype === 'int64' ? new BigInt64Array(values.map((v) => BigInt(v))) : Float32Array.from(values);
      initializers.push({ tensor: { name, dims, data_type: ONNX_DTYPE[dtype] }, rawData: littleEndianBytes(raw) });
    }
    return encodeOnnxModel({
      ir_version: IR_VERSION,
      opset_import: [{ domain: '', version: ONNX_OPSET }],
      producer_name: 'segkit',
      producer_version: spec.producerVersion ?? '',
      doc_string: spec.docString ?? '',
      graph: {
        name: spec.graphName ?? 'segkit',
        node: this.nodes,
        input: this.graphInputs,
        output: this.graphOutputs,
      },
      metadata_props: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
    }, initializers);
  }

  /** Frees the tensors the builder took over (transposed weights and the like). */
  dispose(): void {
    for (const record of this.initializers) if (record.owned) record.tensor.dispose();
    this.initializers.length = 0;
  }

  /** Number of nodes emitted so far, by operator type (for reports and tests). */
  operatorCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const node of this.nodes) counts[node.op_type] = (counts[node.op_type] ?? 0) + 1;
    return counts;
  }
}

/**
 * Exports `root` as an ONNX model: declares the inputs, lets `spec.build` walk the module tree (through
 * `ctx.call`), names the outputs and serializes. The module tree is only read.
 */
export async function buildOnnxModel(root: Module, spec: OnnxModelSpec): Promise<{ bytes: Uint8Array; operators: Record<string, number> }> {
  const builder = new OnnxGraphBuilder(root);
  try {
    const inputs = spec.inputs.map((input) => builder.input(input));
    const built = spec.build(builder, ...inputs);
    const outputs = Array.isArray(built) ? built : [built];
    if (outputs.length !== spec.outputs.length) throw new Error(`ONNX export: the graph built ${outputs.length} outputs, expected ${spec.outputs.length}`);
    outputs.forEach((value, i) => builder.output(value, spec.outputs[i]!.name, spec.outputs[i]!.dims));
    const bytes = await builder.serialize({ metadata: spec.metadata, producerVersion: spec.producerVersion, docString: spec.docString });
    return { bytes, operators: builder.operatorCounts() };
  } finally {
    builder.dispose();
  }
}

export function isStaticSize(size: OnnxSize): size is readonly [number, number] {
  return Array.isArray(size);
}

function broadcastShape(a: readonly OnnxDim[], b: readonly OnnxDim[]): OnnxDim[] {
  const rank = Math.max(a.length, b.length);
  const shape: OnnxDim[] = [];
  for (let i = 0; i < rank; i++) {
    // A missing leading axis broadcasts like 1; null (unknown) stays unknown unless the other side knows it.
    const x = i < rank - a.length ? 1 : a[a.length - rank + i]!;
    const y = i < rank - b.length ? 1 : b[b.length - rank + i]!;
    shape.push(x === 1 ? y : y === 1 ? x : (x ?? y));
  }
  return shape;
}

function valueInfo(name: string, dtype: OnnxDtype, shape: readonly (number | string)[]): Record<string, unknown> {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: ONNX_DTYPE[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function encodeAttribute(name: string, value: OnnxAttributeValue, node: string): Record<string, unknown> {
  if (typeof value === 'string') return { name, type: ATTRIBUTE_TYPE.string, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`ONNX node ${node}: attribute ${name} = ${value} is not an integer; wrap float attributes in ctx.float()`);
    return { name, type: ATTRIBUTE_TYPE.int, i: value };
  }
  if (Array.isArray(value)) {
    if (!value.every(Number.isInteger)) throw new Error(`ONNX node ${node}: attribute ${name} = [${value.join(',')}] is not all integers; wrap float lists in ctx.floats()`);
    return { name, type: ATTRIBUTE_TYPE.ints, ints: [...value] };
  }
  if ('float' in value) return { name, type: ATTRIBUTE_TYPE.float, f: value.float };
  return { name, type: ATTRIBUTE_TYPE.floats, floats: [...(value as OnnxFloatsAttribute).floats] };
}

/** `data` (row-major, `shape`) with its axes permuted: output axis i is input axis permutation[i]. */
function permute<T extends Float32Array | Int32Array>(data: T, shape: readonly number[], permutation: readonly number[]): T {
  const rank = shape.length;
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, stride = 1; i >= 0; i--) {
    inStrides[i] = stride;
    stride *= shape[i]!;
  }
  const outShape = permutation.map((axis) => shape[axis]!);
  const strides = permutation.map((axis) => inStrides[axis]!);
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const index = new Array<number>(rank).fill(0);
  let source = 0;
  for (let k = 0; k < data.length; k++) {
    out[k] = data[source]!;
    // Odometer over the output's indices, moving the source offset by the matching input strides.
    for (let axis = rank - 1; axis >= 0; axis--) {
      if (++index[axis]! < outShape[axis]!) {
        source += strides[axis]!;
        break;
      }
      source -= strides[axis]! * (outShape[axis]! - 1);
      index[axis] = 0;
    }
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** ONNX raw_data is little-endian. */
function littleEndianBytes(data: Float32Array | Int32Array | BigInt64Array): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error('ONNX export needs a little-endian machine');
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
