import { BINARY_OP_CODES, REDUCE_OP_CODES, type ElementwiseEngine } from './engine';

/**
 * Broadcasting binary ops and reductions in TypeScript, the same loop structure as
 * native/elementwise.cc: the broadcast collapses to [rows, inner] loops whose inner loop is
 * contiguous. tfjs's cpu versions compute a multi-index per element, which made batch-norm
 * gradients the slowest part of a training step.
 */

type RowLoop = (a: Float32Array, aOffset: number, aStride: number, b: Float32Array, bOffset: number, bStride: number, out: Float32Array, outOffset: number, n: number) => void;

const BINARY_EXPRESSIONS: Readonly<Record<number, string>> = {
  [BINARY_OP_CODES.Add]: 'x + y',
  [BINARY_OP_CODES.Sub]: 'x - y',
  [BINARY_OP_CODES.Multiply]: 'x * y',
  [BINARY_OP_CODES.RealDiv]: 'x / y',
  [BINARY_OP_CODES.SquaredDifference]: '(x - y) * (x - y)',
  [BINARY_OP_CODES.Maximum]: 'Math.max(x, y)',
  [BINARY_OP_CODES.Minimum]: 'Math.min(x, y)',
};

// One generated function per op: a loop calling a shared op closure would be megamorphic in V8.
const ROW_LOOPS: Readonly<Record<number, RowLoop>> = Object.fromEntries(
  Object.entries(BINARY_EXPRESSIONS).map(([code, expression]) => [
    code,
    new Function('a', 'aOffset', 'aStride', 'b', 'bOffset', 'bStride', 'out', 'outOffset', 'n', `
      for (let i = 0; i < n; i++) {
        const x = a[aOffset + i * aStride], y = b[bOffset + i * bStride];
        out[outOffset + i] = ${expression};
      }`) as RowLoop,
  ]),
);

/** Output dims with each operand's strides (0 where it broadcasts), linear runs of dims merged. */
function broadcastLoops(aShape: Int32Array, bShape: Int32Array, outShape: Int32Array) {
  const rank = outShape.length;
  const stridesFor = (shape: Int32Array) => {
    const strides = new Array<number>(rank).fill(0);
    let stride = 1;
    for (let i = 1; i <= shape.length; i++) {
      const dim = shape[shape.length - i];
      strides[rank - i] = dim === 1 ? 0 : stride;
      stride *= dim;
    }
    return strides;
  };
  const a = stridesFor(aShape), b = stridesFor(bShape);
  const dims: number[] = [], aStrides: number[] = [], bStrides: number[] = [];
  for (let i = 0; i < rank; i++) {
    const n = outShape[i];
    if (n === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && aStrides[last] === a[i] * n && bStrides[last] === b[i] * n) {
      dims[last] *= n;
      aStrides[last] = a[i];
      bStrides[last] = b[i];
    } else {
      dims.push(n);
      aStrides.push(a[i]);
      bStrides.push(b[i]);
    }
  }
  return dims.length ? { dims, aStrides, bStrides } : { dims: [1], aStrides: [0], bStrides: [0] };
}

export const jsElementwiseEngine: ElementwiseEngine = {
  binaryBroadcast(opCode, a, aShape, b, bShape, out, outShape) {
    const rowLoop = ROW_LOOPS[opCode];
    const { dims, aStrides, bStrides } = broadcastLoops(aShape, bShape, outShape);
    const innerAxis = dims.length - 1;
    const inner = dims[innerAxis];
    const index = new Array<number>(innerAxis).fill(0);
    let aOffset = 0, bOffset = 0;
    for (let outOffset = 0; outOffset < out.length; outOffset += inner) {
      rowLoop(a, aOffset, aStrides[innerAxis], b, bOffset, bStrides[innerAxis], out, outOffset, inner);
      for (let axis = innerAxis - 1; axis >= 0; axis--) {
        aOffset += aStrides[axis];
        bOffset += bStrides[axis];
        if (++index[axis] < dims[axis]) break;
        aOffset -= index[axis] * aStrides[axis];
        bOffset -= index[axis] * bStrides[axis];
        index[axis] = 0;
      }
    }
  },

  reduce(opCode, x, out, outer, size, inner) {
    const isMax = opCode === REDUCE_OP_CODES.Max, isMin = opCode === REDUCE_OP_CODES.Min;
    const initial = isMax ? -Infinity : isMin ? Infinity : 0;
    const scale = opCode === REDUCE_OP_CODES.Mean ? 1 / size : 1;
    const acc = new Float64Array(inner); // sums in float64, like tfjs's cpu kernels
    for (let o = 0; o < outer; o++) {
      acc.fill(initial);
      for (let r = 0; r < size; r++) {
        const row = (o * size + r) * inner;
        if (isMax) for (let c = 0; c < inner; c++) acc[c] = x[row + c] > acc[c] || Number.isNaN(x[row + c]) ? x[row + c] : acc[c];
        else if (isMin) for (let c = 0; c < inner; c++) acc[c] = x[row + c] < acc[c] || Number.isNaN(x[row + c]) ? x[row + c] : acc[c];
        else for (let c = 0; c < inner; c++) acc[c] += x[row + c];
      }
      for (let c = 0; c < inner; c++) out[o * inner + c] = acc[c] * scale;
    }
  },
};
