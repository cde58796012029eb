import * as tf from '@tensorflow/tfjs-core';
import { float32Output, type InitialValues } from './buffer-pool';
import type { NativeAddon } from './engine';
import { sizeOf, type KernelArgs, type ReplacementKernel } from './kernel-registry';

/**
 * Data-movement kernels (slice, split, concat, gather, segment sum, transpose, tile; one-hot and
 * comparisons) in TypeScript as
 * contiguous-run copies (TypedArray.set) where the layout allows, for any
 * cpu-like backend and any numeric dtype. tfjs's cpu versions go element by element through
 * index arithmetic, and its UnsortedSegmentSum (the gradient of gather) is O(segments x size):
 * it dominated a UNet training step.
 */

type NumericArray = Float32Array | Int32Array | Uint8Array;

function numericValues(args: KernelArgs, tensor: tf.TensorInfo): NumericArray | null {
  if (tensor.dtype === 'string' || tensor.dtype === 'complex64') return null;
  const values = args.backend.data.get(tensor.dataId).values;
  return values instanceof Float32Array || values instanceof Int32Array || values instanceof Uint8Array ? values : null;
}

/** An output array of the values' type; float32 ones come from the backend's pool on `native`. */
function emptyLike(args: KernelArgs, values: NumericArray, length: number, initial: InitialValues): NumericArray {
  if (values instanceof Float32Array) return float32Output(args.backend, length, initial);
  return new (values.constructor as new (length: number) => NumericArray)(length);
}

/** Below this many elements a plain loop beats subarray() + set() (which allocate a view per call). */
const SHORT_RUN = 64;

/** dst[dstOffset, + length) = src[srcOffset, + length). */
function copyRun(dst: NumericArray, dstOffset: number, src: NumericArray, srcOffset: number, length: number): void {
  if (length < SHORT_RUN) {
    for (let i = 0; i < length; i++) dst[dstOffset + i] = src[srcOffset + i];
  } else {
    dst.set(src.subarray(srcOffset, srcOffset + length), dstOffset);
  }
}

/** The addon behind segkit's `native` backend (NativeBackend.addon), or null on other backends. */
function addonOf(args: KernelArgs): NativeAddon | null {
  return (args.backend as unknown as { addon?: NativeAddon }).addon ?? null;
}

/**
 * `rows` runs of `run` elements: dst[dstOffset + r·dstStride + i] = src[srcOffset + r·srcStride + i].
 * float32 on `native` is one multi-threaded addon call (memcpy per row); elsewhere a loop of copyRun,
 * whose element-wise copies of short runs (a concat of 16-channel maps) cost 3 ms per MB.
 */
function copyRows(args: KernelArgs, dst: NumericArray, dstOffset: number, dstStride: number, src: NumericArray, srcOffset: number, srcStride: number, rows: number, run: number): void {
  const addon = addonOf(args);
  if (addon && dst instanceof Float32Array && src instanceof Float32Array) {
    addon.copyRows(src, srcOffset, srcStride, dst, dstOffset, dstStride, rows, run);
    return;
  }
  for (let r = 0; r < rows; r++) copyRun(dst, dstOffset + r * dstStride, src, srcOffset + r * srcStride, run);
}

/** Copies the box [begin, begin + size) of a row-major array; whole trailing dims move as one run. */
function copyBox(args: KernelArgs, values: NumericArray, shape: readonly number[], begin: readonly number[], size: readonly number[]): NumericArray {
  const out = emptyLike(args, values, sizeOf(size), 'overwritten');
  const rank = shape.length;
  let runDims = rank; // dims [runDims, rank) are copied whole, plus the partial dim before them
  while (runDims > 0 && size[runDims - 1] === shape[runDims - 1]) runDims--;
  const outerRank = Math.max(0, runDims - 1);
  const run = sizeOf(size.slice(outerRank));
  const strides = tf.util.computeStrides(shape as number[]);
  const rowStride = (axis: number) => (axis === rank - 1 ? 1 : strides[axis]);
  if (size.slice(1, outerRank).every((dim, i) => dim === shape[i + 1])) {
    // Outer axes after the first are whole: the rows are evenly spaced (a split along the channels).
    let offset = 0;
    for (let axis = 0; axis < rank; axis++) offset += begin[axis] * rowStride(axis);
    const rows = out.length === 0 ? 0 : out.length / run;
    copyRows(args, out, 0, run, values, offset, outerRank > 0 ? rowStride(outerRank - 1) : run, rows, run);
    return out;
  }
  const index = new Array<number>(outerRank).fill(0);
  for (let written = 0; written < out.length; written += run) {
    let offset = 0;
    for (let axis = 0; axis < rank; axis++) offset += (begin[axis] + (axis < outerRank ? index[axis] : 0)) * rowStride(axis);
    copyRun(out, written, values, offset, run);
    for (let axis = outerRank - 1; axis >= 0; axis--) {
      if (++index[axis] < size[axis]) break;
      index[axis] = 0;
    }
  }
  return out;
}

const slice: ReplacementKernel = (args, fallback) => {
  const { x } = args.inputs;
  const values = numericValues(args, x);
  if (!values) return fallback();
  const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, args.attrs.begin, args.attrs.size);
  return args.backend.makeTensorInfo(size, x.dtype, copyBox(args, values, x.shape, begin, size));
};

const splitV: ReplacementKernel = (args, fallback) => {
  const { x } = args.inputs;
  const values = numericValues(args, x);
  if (!values) return fallback();
  const axis = tf.util.parseAxisParam(args.attrs.axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, args.attrs.numOrSizeSplits, axis);
  let offset = 0;
  return sizes.map((length) => {
    const begin = x.shape.map((_, i) => (i === axis ? offset : 0));
    const size = x.shape.map((dim, i) => (i === axis ? length : dim));
    offset += length;
    return args.backend.makeTensorInfo(size, x.dtype, copyBox(args, values, x.shape, begin, size));
  });
};

const gather: ReplacementKernel = (args, fallback) => {
  const { x, indices } = args.inputs;
  const values = numericValues(args, x);
  const index = numericValues(args, indices);
  if (!values || !(index instanceof Int32Array) || (args.attrs.batchDims ?? 0) !== 0) return fallback();
  const axis = tf.util.parseAxisParam(args.attrs.axis, x.shape)[0];
  const axisSize = x.shape[axis];
  if (index.some((i) => i < 0 || i >= axisSize)) return fallback(); // tfjs reports the bad index
  const outer = sizeOf(x.shape.slice(0, axis));
  const inner = sizeOf(x.shape.slice(axis + 1));
  const out = emptyLike(args, values, outer * index.length * inner, 'overwritten');
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < index.length; i++) {
      const src = (o * axisSize + index[i]) * inner;
      copyRun(out, (o * index.length + i) * inner, values, src, inner);
    }
  }
  const outShape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
  return args.backend.makeTensorInfo(outShape, x.dtype, out);
};

const unsortedSegmentSum: ReplacementKernel = (args, fallback) => {
  const { x, segmentIds } = args.inputs;
  const values = numericValues(args, x);
  const ids = numericValues(args, segmentIds);
  if (!(values instanceof Float32Array || values instanceof Int32Array) || !(ids instanceof Int32Array)) return fallback();
  const numSegments: number = args.attrs.numSegments;
  const inner = ids.length === 0 ? 0 : values.length / ids.length;
  const out = emptyLike(args, values, numSegments * inner, 'zeroed');
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= numSegments) continue; // tf drops out-of-range ids
    const dst = id * inner, src = i * inner;
    for (let j = 0; j < inner; j++) out[dst + j] += values[src + j];
  }
  return args.backend.makeTensorInfo([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype, out);
};

/** Row-major odometer over the first `rank` dims of `shape`, calling visit(index) for each. */
function forEachIndex(shape: readonly number[], visit: (index: readonly number[]) => void): void {
  if (shape.some((dim) => dim === 0)) return;
  const index = new Array<number>(shape.length).fill(0);
  for (;;) {
    visit(index);
    let axis = shape.length - 1;
    for (; axis >= 0; axis--) {
      if (++index[axis] < shape[axis]) break;
      index[axis] = 0;
    }
    if (axis < 0) return;
  }
}

function transposeValues(args: KernelArgs, values: NumericArray, shape: readonly number[], perm: readonly number[]): NumericArray {
  const rank = shape.length;
  const out = emptyLike(args, values, values.length, 'overwritten');
  const inStrides = [...tf.util.computeStrides(shape as number[]), 1];
  // Trailing axes that stay in place move as one contiguous run.
  let keptAxes = 0;
  while (keptAxes < rank && perm[rank - 1 - keptAxes] === rank - 1 - keptAxes) keptAxes++;
  const outer = perm.slice(0, rank - Math.max(keptAxes, 1));
  const outerShape = outer.map((axis) => shape[axis]);
  let written = 0;
  if (keptAxes > 0) {
    const run = sizeOf(shape.slice(rank - keptAxes));
    forEachIndex(outerShape, (index) => {
      let src = 0;
      for (let i = 0; i < outer.length; i++) src += index[i] * inStrides[outer[i]];
      copyRun(out, written, values, src, run);
      written += run;
    });
  } else {
    const lastAxis = perm[rank - 1], lastDim = shape[lastAxis], lastStride = inStrides[lastAxis];
    forEachIndex(outerShape, (index) => {
      let src = 0;
      for (let i = 0; i < outer.length; i++) src += index[i] * inStrides[outer[i]];
      for (let j = 0; j < lastDim; j++) out[written++] = values[src + j * lastStride];
    });
  }
  return out;
}

const transpose: ReplacementKernel = (args, fallback) => {
  const { x } = args.inputs;
  const values = numericValues(args, x);
  if (!values || x.shape.length === 0) return fallback();
  const perm: number[] = args.attrs.perm;
  return args.backend.makeTensorInfo(perm.map((axis) => x.shape[axis]), x.dtype, transposeValues(args, values, x.shape, perm));
};

const tile: ReplacementKernel = (args, fallback) => {
  const { x } = args.inputs;
  const values = numericValues(args, x);
  const reps: number[] = args.attrs.reps;
  if (!values || x.shape.length === 0 || reps.length !== x.shape.length) return fallback();
  const rank = x.shape.length;
  const outShape = x.shape.map((dim, i) => dim * reps[i]);
  const out = emptyLike(args, values, sizeOf(outShape), 'overwritten');
  if (out.length === 0) return args.backend.makeTensorInfo(outShape, x.dtype, out);
  const inStrides = [...tf.util.computeStrides(x.shape), 1];
  const outStrides = [...tf.util.computeStrides(outShape), 1];
  // Writes the tile of source axes [axis, rank) at dst: one copy of the source span per index,
  // then the span repeated reps[axis] times by doubling copies (few large copies, not many small).
  const fill = (axis: number, src: number, dst: number): void => {
    if (axis === rank - 1) {
      copyRun(out, dst, values, src, x.shape[axis]);
    } else {
      for (let i = 0; i < x.shape[axis]; i++) fill(axis + 1, src + i * inStrides[axis], dst + i * outStrides[axis]);
    }
    const span = x.shape[axis] * outStrides[axis];
    const total = span * reps[axis];
    for (let filled = span; filled < total; filled += Math.min(filled, total - filled)) {
      out.copyWithin(dst + filled, dst, dst + Math.min(filled, total - filled));
    }
  };
  fill(0, 0, 0);
  return args.backend.makeTensorInfo(outShape, x.dtype, out);
};

const concat: ReplacementKernel = (args, fallback) => {
  const tensors = Object.values(args.inputs).filter((t) => sizeOf(t.shape) > 0);
  if (tensors.length === 0) return fallback();
  const arrays = tensors.map((t) => numericValues(args, t));
  const dtype = tensors[0].dtype;
  if (arrays.some((a) => a === null) || tensors.some((t) => t.dtype !== dtype)) return fallback();
  const axis = tf.util.parseAxisParam(args.attrs.axis, tensors[0].shape)[0];
  const outShape = tf.backend_util.computeOutShape(tensors.map((t) => t.shape), axis);
  const out = emptyLike(args, arrays[0] as NumericArray, sizeOf(outShape), 'overwritten');
  const outer = sizeOf(outShape.slice(0, axis));
  const runs = tensors.map((t) => sizeOf(t.shape.slice(axis)));
  const outRun = runs.reduce((sum, run) => sum + run, 0);
  let column = 0; // each input fills its band of columns of the [outer, outRun] output
  arrays.forEach((values, i) => {
    copyRows(args, out, column, outRun, values as NumericArray, 0, runs[i], outer, runs[i]);
    column += runs[i];
  });
  return args.backend.makeTensorInfo(outShape, dtype, out);
};

/** Constant padding: each input row (last axis) is one copy into the filled output. */
function padValues(args: KernelArgs, values: NumericArray, shape: readonly number[], paddings: readonly (readonly [number, number])[], constant: number): { values: NumericArray; shape: number[] } {
  const rank = shape.length;
  const outShape = shape.map((dim, i) => paddings[i][0] + dim + paddings[i][1]);
  const out = emptyLike(args, values, sizeOf(outShape), constant === 0 ? 'zeroed' : 'overwritten');
  if (constant !== 0) out.fill(constant);
  const outStrides = [...tf.util.computeStrides(outShape), 1];
  const run = shape[rank - 1];
  let src = 0;
  forEachIndex(shape.slice(0, -1), (index) => {
    let dst = paddings[rank - 1][0];
    for (let axis = 0; axis < rank - 1; axis++) dst += (index[axis] + paddings[axis][0]) * outStrides[axis];
    copyRun(out, dst, values, src, run);
    src += run;
  });
  return { values: out, shape: outShape };
}

const padV2: ReplacementKernel = (args, fallback) => {
  const { x } = args.inputs;
  const values = numericValues(args, x);
  if (!values || x.shape.length === 0) return fallback();
  const padded = padValues(args, values, x.shape, args.attrs.paddings, args.attrs.constantValue ?? 0);
  return args.backend.makeTensorInfo(padded.shape, x.dtype, padded.values);
};

// SpaceToBatchND / BatchToSpaceND (the atrous trick behind core's dilated convolutions) with tfjs's
// shape algebra, but on the copies above: tfjs's cpu versions call its element-wise pad and transpose.
const spaceToBatchND: ReplacementKernel = (args, fallback) => {
  const { x } = args.inputs;
  const values = numericValues(args, x);
  if (!values) return fallback();
  const blockShape: number[] = args.attrs.blockShape;
  const paddings: [number, number][] = [[0, 0], ...args.attrs.paddings, ...x.shape.slice(1 + blockShape.length).map((): [number, number] => [0, 0])];
  const padded = padValues(args, values, x.shape, paddings, 0);
  const blocks = sizeOf(blockShape);
  const reshaped = tf.backend_util.getReshaped(padded.shape, blockShape, blocks, false);
  const perm = tf.backend_util.getPermuted(reshaped.length, blockShape.length, false);
  const outShape = tf.backend_util.getReshapedPermuted(padded.shape, blockShape, blocks, false);
  return args.backend.makeTensorInfo(outShape, x.dtype, transposeValues(args, padded.values, reshaped, perm));
};

const batchToSpaceND: ReplacementKernel = (args, fallback) => {
  const { x } = args.inputs;
  const values = numericValues(args, x);
  if (!values) return fallback();
  const blockShape: number[] = args.attrs.blockShape;
  const blocks = sizeOf(blockShape);
  const reshaped = tf.backend_util.getReshaped(x.shape, blockShape, blocks);
  const perm = tf.backend_util.getPermuted(reshaped.length, blockShape.length);
  const permutedShape = tf.backend_util.getReshapedPermuted(x.shape, blockShape, blocks);
  // The crop covers the leading axes; trailing ones are kept whole.
  const cropBegin = tf.backend_util.getSliceBeginCoords(args.attrs.crops, blockShape.length);
  const cropSize = tf.backend_util.getSliceSize(permutedShape, args.attrs.crops, blockShape.length);
  const begin = permutedShape.map((_, i) => cropBegin[i] ?? 0);
  const size = permutedShape.map((dim, i) => cropSize[i] ?? dim);
  return args.backend.makeTensorInfo(size, x.dtype, copyBox(args, transposeValues(args, values, reshaped, perm), permutedShape, begin, size));
};

/** Above this k the insertion below loses to tfjs's select + sort. */
const MAX_INSERTION_TOP_K = 16;

/**
 * The rows x size and k of a TopK over the last axis that insertion into a k-long list per row
 * handles (sorted, or all of each row; 1 <= k <= 16), or null: large k and unsorted requests take
 * tfjs's kernel.
 */
export function insertionTopK(args: KernelArgs): { rows: number; size: number; k: number } | null {
  const { x } = args.inputs;
  const k: number = args.attrs.k;
  const size = x.shape[x.shape.length - 1] ?? 0;
  if (x.shape.length === 0 || k < 1 || k > MAX_INSERTION_TOP_K || k > size || (!args.attrs.sorted && k < size)) return null;
  return { rows: sizeOf(x.shape) / size, size, k };
}

/** The two TopK outputs ([..., k] values and int32 indices) of x. */
export function topKOutputs(args: KernelArgs, k: number, values: tf.backend_util.TypedArray, indices: Int32Array): tf.TensorInfo[] {
  const { x } = args.inputs;
  const outShape = [...x.shape.slice(0, -1), k];
  return [args.backend.makeTensorInfo(outShape, x.dtype, values), args.backend.makeTensorInfo(outShape, 'int32', indices)];
}

/**
 * TopK over the last axis, sorted (descending, ties to the lower index: tfjs's order), by insertion
 * into a k-long list per row; tfjs allocates an object per element and sorts (it dominated an accuracy
 * metric's argmax). NaN inputs take the cpu kernel. (`native` runs float32 rows in the addon.)
 */
const topK: ReplacementKernel = (args, fallback) => {
  const values = numericValues(args, args.inputs.x);
  const shape = insertionTopK(args);
  if (!values || !shape) return fallback();
  const { rows, size, k } = shape;
  const topValues = emptyLike(args, values, rows * k, 'overwritten');
  const topIndices = new Int32Array(rows * k);
  for (let row = 0; row < rows; row++) {
    const base = row * size, out = row * k;
    let filled = 0;
    for (let i = 0; i < size; i++) {
      const value = values[base + i];
      if (value !== value) return fallback(); // NaN: tfjs's comparator decides
      if (filled === k && !(value > topValues[out + k - 1])) continue; // equal values keep the earlier index
      let slot = filled < k ? filled++ : k - 1;
      for (; slot > 0 && value > topValues[out + slot - 1]; slot--) {
        topValues[out + slot] = topValues[out + slot - 1];
        topIndices[out + slot] = topIndices[out + slot - 1];
      }
      topValues[out + slot] = value;
      topIndices[out + slot] = i;
    }
  }
  return topKOutputs(args, k, topValues, topIndices);
};

/**
 * OneHot as one fill and one store per index. tfjs's loop is the same, but reads indices of either
 * dtype through one call site (float32 labels here, int32 there) and ran at ~100 ns an element in a
 * training step (a UNet's losses one-hot 16K labels 4 times an iteration).
 */
const oneHot: ReplacementKernel = (args, fallback) => {
  const { indices } = args.inputs;
  const values = numericValues(args, indices);
  const { depth, onValue, offValue, dtype } = args.attrs as { depth: number; onValue: number; offValue: number; dtype: tf.DataType };
  if (!values || (dtype !== 'float32' && dtype !== 'int32')) return fallback();
  const out: Float32Array | Int32Array = dtype === 'float32' ? float32Output(args.backend, values.length * depth, 'overwritten') : new Int32Array(values.length * depth);
  out.fill(offValue);
  for (let i = 0; i < values.length; i++) {
    const index = values[i]!;
    if (index >= 0 && index < depth) out[i * depth + index] = onValue;
  }
  return args.backend.makeTensorInfo([...indices.shape, depth], dtype, out);
};

/**
 * Cast of int32 or bool values to float32 into a Float32Array. cpu's Cast returns the input's own
 * Int32Array / Uint8Array under the new dtype (no precision is lost), so every float32 kernel that
 * read the result converted it again: a UNet's loss masks and one-hot labels, multiplied a dozen
 * times an iteration, cost 0.4-0.9 ms a multiply at 16-32K elements. Converted once here (TypedArray
 * set: ~0.1 ns an element). Other casts take cpu's.
 */
const castToFloat32: ReplacementKernel = (args, fallback) => {
  const { x } = args.inputs;
  if ((args.attrs as { dtype: tf.DataType }).dtype !== 'float32' || (x.dtype !== 'int32' && x.dtype !== 'bool')) return fallback();
  const values = numericValues(args, x);
  if (!values) return fallback();
  const out = float32Output(args.backend, values.length, 'overwritten');
  out.set(values);
  return args.backend.makeTensorInfo(x.shape.slice(), 'float32', out);
};

type Comparison = 'equal' | 'notEqual' | 'less' | 'lessEqual' | 'greater' | 'greaterEqual';

/**
 * out[i] = a[i·aStep] op b[i·bStep] (step 0: a scalar operand). One loop per operator: a comparison
 * passed in as a function would be one call site for all six, which V8 does not inline.
 */
function compareInto(op: Comparison, a: NumericArray, aStep: number, b: NumericArray, bStep: number, out: Uint8Array): void {
  const n = out.length;
  switch (op) {
    case 'equal':
      for (let i = 0; i < n; i++) out[i] = a[i * aStep] === b[i * bStep] ? 1 : 0;
      break;
    case 'notEqual':
      for (let i = 0; i < n; i++) out[i] = a[i * aStep] !== b[i * bStep] ? 1 : 0;
      break;
    case 'less':
      for (let i = 0; i < n; i++) out[i] = a[i * aStep]! < b[i * bStep]! ? 1 : 0;
      break;
    case 'lessEqual':
      for (let i = 0; i < n; i++) out[i] = a[i * aStep]! <= b[i * bStep]! ? 1 : 0;
      break;
    case 'greater':
      for (let i = 0; i < n; i++) out[i] = a[i * aStep]! > b[i * bStep]! ? 1 : 0;
      break;
    case 'greaterEqual':
      for (let i = 0; i < n; i++) out[i] = a[i * aStep]! >= b[i * bStep]! ? 1 : 0;
      break;
  }
}

/**
 * Comparisons of same-shaped tensors or a tensor and a scalar, to bool, in one tight loop. tfjs's cpu
 * version maps every element through broadcast index arithmetic (~18 ns an element; a UNet's losses
 * and OHEM compare 16K labels a dozen times an iteration); other broadcasts take it.
 */
function comparison(op: Comparison): ReplacementKernel {
  return (args, fallback) => {
    const { a, b } = args.inputs;
    const av = numericValues(args, a), bv = numericValues(args, b);
    if (!av || !bv) return fallback();
    const sameShape = tf.util.arraysEqual(a.shape, b.shape);
    const scalarB = bv.length === 1 && b.shape.length <= a.shape.length;
    const scalarA = av.length === 1 && a.shape.length <= b.shape.length;
    if (!sameShape && !scalarB && !scalarA) return fallback();
    const shape = sameShape || scalarB ? a.shape : b.shape;
    const out = new Uint8Array(sizeOf(shape));
    compareInto(op, av, sameShape || !scalarA ? 1 : 0, bv, sameShape || !scalarB ? 1 : 0, out);
    return args.backend.makeTensorInfo(shape, 'bool', out);
  };
}

export const dataKernels: Readonly<Record<string, ReplacementKernel>> = {
  [tf.OneHot]: oneHot,
  [tf.Cast]: castToFloat32,
  [tf.Equal]: comparison('equal'),
  [tf.NotEqual]: comparison('notEqual'),
  [tf.Less]: comparison('less'),
  [tf.LessEqual]: comparison('lessEqual'),
  [tf.Greater]: comparison('greater'),
  [tf.GreaterEqual]: comparison('greaterEqual'),
  [tf.TopK]: topK,
  [tf.PadV2]: padV2,
  [tf.SpaceToBatchND]: spaceToBatchND,
  [tf.BatchToSpaceND]: batchToSpaceND,
  [tf.Slice]: slice,
  [tf.SplitV]: splitV,
  [tf.GatherV2]: gather,
  [tf.UnsortedSegmentSum]: unsortedSegmentSum,
  [tf.Transpose]: transpose,
  [tf.Tile]: tile,
  [tf.Concat]: concat,
};
