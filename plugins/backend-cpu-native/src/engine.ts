/**
 * The array-level kernels a backend implements. The native addon provides all of them; the
 * TypeScript fallback (js-engine.ts) provides the convolution trio. Every function writes into a
 * caller-allocated, zero-filled output array; `geometry` is a {@link WindowGeometry} packed by
 * {@link packGeometry}.
 */
export interface ConvEngine {
  conv2d(x: Float32Array, filter: Float32Array, out: Float32Array, geometry: Int32Array): void;
  conv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dFilter: Float32Array, geometry: Int32Array): void;
}

/** Broadcasting binary arithmetic and reductions over a middle axis (addon, or js-elementwise.ts). */
export interface ElementwiseEngine {
  /** out = a op b with numpy broadcasting (shapes as Int32Arrays); see {@link BINARY_OP_CODES}. */
  binaryBroadcast(opCode: number, a: Float32Array, aShape: Int32Array, b: Float32Array, bShape: Int32Array, out: Float32Array, outShape: Int32Array): void;
  /** x viewed as [outer, size, inner], reduced over the middle axis; see {@link REDUCE_OP_CODES}. */
  reduce(opCode: number, x: Float32Array, out: Float32Array, outer: number, size: number, inner: number): void;
}

/** The full native addon (native/addon.cc). */
export interface NativeAddon extends ConvEngine, ElementwiseEngine {
  /** c = op(a) * op(b) on [m,k]x[k,n] slices starting at the given element offsets. */
  matMul(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, c: Float32Array, cOffset: number, m: number, n: number, k: number, transposeA: boolean, transposeB: boolean): void;
  depthwiseConv2d(x: Float32Array, filter: Float32Array, out: Float32Array, geometry: Int32Array): void;
  depthwiseConv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  depthwiseConv2dBackpropFilter(x: Float32Array, dy: Float32Array, dFilter: Float32Array, geometry: Int32Array): void;
  maxPool(x: Float32Array, out: Float32Array, geometry: Int32Array): void;
  maxPoolGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  avgPool(x: Float32Array, out: Float32Array, geometry: Int32Array): void;
  avgPoolGrad(dy: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  resizeBilinear(x: Float32Array, out: Float32Array, geometry: Int32Array, alignCorners: boolean, halfPixelCenters: boolean): void;
  resizeBilinearGrad(dy: Float32Array, dx: Float32Array, geometry: Int32Array, alignCorners: boolean, halfPixelCenters: boolean): void;
  /** In place: out[r, c] = activation(out[r, c] + bias[c]); see {@link ACTIVATION_CODES}. */
  biasActivation(out: Float32Array, rows: number, channels: number, bias: Float32Array | null, activationCode: number, alpha: number): void;
  /** out[i] = op(x[i]) (alpha: Step's value for x <= 0); see {@link UNARY_OP_CODES}. */
  unary(opCode: number, x: Float32Array, out: Float32Array, alpha: number): void;
  /** Per-channel affine over [rows, channels]: out = (x - mean[c]) * scale[c] + offset[c]. */
  batchNorm(x: Float32Array, out: Float32Array, rows: number, channels: number, mean: Float32Array, scale: Float32Array, offset: Float32Array): void;
  /** Per-channel mean and biased variance over the rows of x [rows, channels]. */
  batchMoments(x: Float32Array, rows: number, channels: number, mean: Float32Array, variance: Float32Array): void;
  /** Training-mode batch-norm gradient (batch statistics recomputed from x); scale null means 1. */
  batchNormGrad(x: Float32Array, dy: Float32Array, rows: number, channels: number, scale: Float32Array | null, epsilon: number, dx: Float32Array, dScale: Float32Array, dOffset: Float32Array): void;
  /** Training-mode batch norm (statistics, normalisation and optionally ReLU) in one call; scale/offset null mean 1/0. */
  batchNormTrain(x: Float32Array, rows: number, channels: number, scale: Float32Array | null, offset: Float32Array | null, epsilon: number, relu: boolean, out: Float32Array, mean: Float32Array, variance: Float32Array): void;
  /** Gradient of relu(batchNormTrain(x)) (the ReLU mask recomputed from x, scale and offset). */
  batchNormReluGrad(x: Float32Array, dy: Float32Array, rows: number, channels: number, scale: Float32Array | null, offset: Float32Array | null, epsilon: number, dx: Float32Array, dScale: Float32Array, dOffset: Float32Array): void;
  /** One SGD step into newParam (and newBuffer when momentum ≠ 0); buffer null on the first step. */
  sgdUpdate(param: Float32Array, grad: Float32Array, buffer: Float32Array | null, newParam: Float32Array, newBuffer: Float32Array | null, lr: number, momentum: number, dampening: number, weightDecay: number, nesterov: boolean): void;
  /**
   * One Adam/AdamW step; moments null on the first step, maxExpAvgSq/newMax only with amsgrad. hyper is
   * [lr, beta1, beta2, eps, weightDecay, step]. Outputs may be the inputs' own arrays (in place).
   */
  adamUpdate(param: Float32Array, grad: Float32Array, expAvg: Float32Array | null, expAvgSq: Float32Array | null, maxExpAvgSq: Float32Array | null, newParam: Float32Array, newExpAvg: Float32Array, newExpAvgSq: Float32Array, newMax: Float32Array | null, hyper: Float64Array, decoupled: boolean, amsgrad: boolean): void;
  /** `rows` runs of `run` floats: dst[dstOffset + r·dstStride + i] = src[srcOffset + r·srcStride + i]. */
  copyRows(src: Float32Array, srcOffset: number, srcStride: number, dst: Float32Array, dstOffset: number, dstStride: number, rows: number, run: number): void;
  /** Softmax over the last axis of x [rows, columns]. */
  softmax(x: Float32Array, out: Float32Array, rows: number, columns: number): void;
  /** The k largest of each row of x [rows, size], sorted (ties: lower index first); false if x holds a NaN. */
  topK(x: Float32Array, rows: number, size: number, k: number, values: Float32Array, indices: Int32Array): boolean;
  numThreads(): number;
  setNumThreads(n: number): number;
  /** Hands the whole pages inside `array`'s memory back to the OS (madvise MADV_DONTNEED); they read as zeros after. */
  releasePages(array: Float32Array): void;
  /** The GEMM micro-kernel in use: 'avx512', 'avx2-fma' or 'portable' (CPUID, or SEGKIT_NATIVE_ISA). */
  microKernel(): string;
  /** The micro-kernels this CPU can run, fastest first. */
  microKernels(): string[];
  /** Switches the micro-kernel ('avx2' is 'avx2-fma'); false when this CPU cannot run it. */
  setMicroKernel(name: string): boolean;
  /** The stride-1 convolution algorithm forced ('im2col', 'winograd2', 'winograd4' for 3x3; 'direct'), or 'auto' (measured heuristic; SEGKIT_NATIVE_CONV). */
  convAlgorithm(): string;
  /** Forces an algorithm for stride-1 convolutions where it applies ('auto' restores the heuristic); false for an unknown name. */
  setConvAlgorithm(name: string): boolean;
}

/** Activations the native epilogue fuses (others fall back to the cpu kernel). */
export const ACTIVATION_CODES: Readonly<Record<string, number>> = { linear: 0, relu: 1, relu6: 2, leakyrelu: 3, elu: 4, sigmoid: 5 };

/** tfjs kernel name -> native/ops.h BinaryOp. */
export const BINARY_OP_CODES: Readonly<Record<string, number>> = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, SquaredDifference: 4, Maximum: 5, Minimum: 6 };

/** tfjs kernel name -> native/ops.h UnaryOp. */
export const UNARY_OP_CODES: Readonly<Record<string, number>> = {
  Relu: 0, Relu6: 1, Step: 2, Exp: 3, Log: 4, Neg: 5, Square: 6, Sqrt: 7, Rsqrt: 8, Sigmoid: 9, Tanh: 10, Abs: 11, Reciprocal: 12,
};

/** tfjs kernel name -> native/ops.h ReduceOp. */
export const REDUCE_OP_CODES: Readonly<Record<string, number>> = { Sum: 0, Mean: 1, Max: 2, Min: 3 };

/** A 2-D window (convolution or pooling) on NHWC data. */
export interface WindowGeometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  outC: number;
  kH: number;
  kW: number;
  strideH: number;
  strideW: number;
  dilH: number;
  dilW: number;
  padTop: number;
  padLeft: number;
}

/** Field order shared with the C++ struct (native/ops.h). */
const GEOMETRY_FIELDS: readonly (keyof WindowGeometry)[] = ['batch', 'inH', 'inW', 'inC', 'outH', 'outW', 'outC', 'kH', 'kW', 'strideH', 'strideW', 'dilH', 'dilW', 'padTop', 'padLeft'];

export function packGeometry(g: WindowGeometry): Int32Array {
  return Int32Array.from(GEOMETRY_FIELDS, (field) => g[field]);
}

export function unpackGeometry(packed: Int32Array): WindowGeometry {
  const g = {} as WindowGeometry;
  GEOMETRY_FIELDS.forEach((field, i) => (g[field] = packed[i]));
  return g;
}
