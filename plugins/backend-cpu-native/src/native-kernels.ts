import * as tf from '@tensorflow/tfjs-core';
import { ADAM_UPDATE_KERNEL, SGD_UPDATE_KERNEL, nn } from '@segkit/core';
import { ACTIVATION_CODES, UNARY_OP_CODES, packGeometry, type NativeAddon, type WindowGeometry } from './engine';
import { convInfo, convKernels, windowGeometry } from './conv-kernels';
import { dataKernels, insertionTopK, topKOutputs } from './data-kernels';
import { elementwiseKernels } from './elementwise-kernels';
import { float32Output } from './buffer-pool';
import { float32Values, runFloat32, sizeOf, type KernelArgs, type ReplacementKernel } from './kernel-registry';

type Shape4D = [number, number, number, number];

/**
 * The fused epilogue (bias over the last axis + activation) the addon can apply in place, or null
 * when tfjs asks for something else (prelu, a bias of another shape): then the cpu kernel runs.
 */
function nativeEpilogue(args: KernelArgs, channels: number): { bias: Float32Array | null; code: number; alpha: number } | null {
  const bias: tf.TensorInfo | undefined = args.inputs.bias;
  const activation: string = args.attrs.activation ?? 'linear';
  const code = ACTIVATION_CODES[activation];
  if (code === undefined) return null;
  const biasValues = bias ? float32Values(args.backend, bias) : null;
  if (bias && (!biasValues || biasValues.length !== channels || bias.shape.length !== 1)) return null;
  return { bias: biasValues, code, alpha: args.attrs.leakyreluAlpha ?? 0.2 };
}

function poolGeometry(x: tf.TensorInfo, attrs: KernelArgs['attrs']): Int32Array {
  const info = tf.backend_util.computePool2DInfo(x.shape as Shape4D, attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  return packGeometry(windowGeometry(info));
}

function resizeGeometry(images: tf.TensorInfo, outH: number, outW: number): Int32Array {
  const [batch, inH, inW, channels] = images.shape;
  const unused = { outC: channels, kH: 1, kW: 1, strideH: 1, strideW: 1, dilH: 1, dilW: 1, padTop: 0, padLeft: 0 };
  return packGeometry({ batch, inH, inW, inC: channels, outH, outW, ...unused } satisfies WindowGeometry);
}

/** Element offsets of each output batch's A and B matrices under numpy-style batch broadcasting. */
function broadcastBatchOffsets(aBatch: readonly number[], bBatch: readonly number[], aMatrix: number, bMatrix: number) {
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch.slice(), bBatch.slice());
  const count = sizeOf(outBatch);
  const aOffsets: number[] = [];
  const bOffsets: number[] = [];
  const operandIndex = (shape: readonly number[], outIndex: readonly number[]) => {
    // Align from the right; size-1 axes broadcast.
    let flat = 0;
    const shift = outIndex.length - shape.length;
    shape.forEach((dim, axis) => (flat = flat * dim + (dim === 1 ? 0 : outIndex[axis + shift])));
    return flat;
  };
  const strides = tf.util.computeStrides(outBatch);
  for (let i = 0; i < count; i++) {
    const index = outBatch.length ? tf.util.indexToLoc(i, outBatch.length, strides) : [];
    aOffsets.push(operandIndex(aBatch, index) * aMatrix);
    bOffsets.push(operandIndex(bBatch, index) * bMatrix);
  }
  return { outBatch, aOffsets, bOffsets };
}

function unaryKernel(addon: NativeAddon, opCode: number): ReplacementKernel {
  return (args, fallback) => {
    const { x } = args.inputs;
    return runFloat32(args, x.shape, [x], ([xv], out) => addon.unary(opCode, xv, out, args.attrs?.alpha ?? 0), 'overwritten') ?? fallback();
  };
}

/**
 * FusedBatchNorm (inference form, also what training runs with batch statistics) when every
 * per-channel parameter has 1 or C values; tfjs's broadcasting by flat index covers more, which the
 * cpu kernel keeps handling.
 */
function batchNormKernel(addon: NativeAddon): ReplacementKernel {
  return (args, fallback) => {
    const { x, mean, variance, scale, offset } = args.inputs;
    const channels = x.shape[x.shape.length - 1] ?? 1;
    const perChannel = (t: tf.TensorInfo | undefined, absent: number): Float32Array | null => {
      if (!t) return new Float32Array(channels).fill(absent);
      const values = float32Values(args.backend, t);
      if (!values || (values.length !== 1 && values.length !== channels)) return null;
      return values.length === channels ? values : new Float32Array(channels).fill(values[0]);
    };
    const [m, v, s, o] = [perChannel(mean, 0), perChannel(variance, 1), perChannel(scale, 1), perChannel(offset, 0)];
    if (!m || !v || !s || !o || channels === 0) return fallback();
    const epsilon: number = args.attrs.varianceEpsilon ?? 0.001;
    const multiplier = Float32Array.from(s, (scaleValue, c) => scaleValue / Math.sqrt(v[c] + epsilon));
    return runFloat32(args, x.shape, [x], ([xv], out) => addon.batchNorm(xv, out, xv.length / channels, channels, m, multiplier, o), 'overwritten') ?? fallback();
  };
}

/**
 * Core's training-mode batch-norm kernels (nn.BATCH_MOMENTS_KERNEL, nn.BATCH_NORM_GRAD_KERNEL: NHWC,
 * statistics over every axis but the last), each one addon call instead of a chain of element-wise ops.
 */
function batchNormTrainingKernels(addon: NativeAddon): Record<string, ReplacementKernel> {
  const rowsAndChannels = (x: tf.TensorInfo) => {
    const channels = x.shape[x.shape.length - 1] ?? 1;
    return { channels, rows: channels === 0 ? 0 : sizeOf(x.shape) / channels };
  };
  return {
    [nn.BATCH_MOMENTS_KERNEL]: (args, fallback) => {
      const { x } = args.inputs;
      const xv = float32Values(args.backend, x);
      if (!xv) return fallback();
      const { rows, channels } = rowsAndChannels(x);
      const mean = new Float32Array(channels);
      const variance = new Float32Array(channels);
      addon.batchMoments(xv, rows, channels, mean, variance);
      return [args.backend.makeTensorInfo([channels], 'float32', mean), args.backend.makeTensorInfo([channels], 'float32', variance)];
    },
    [nn.BATCH_NORM_TRAIN_KERNEL]: (args, fallback) => {
      const { x, scale, offset } = args.inputs;
      const { rows, channels } = rowsAndChannels(x);
      const [xv, s, o] = [float32Values(args.backend, x), scale ? float32Values(args.backend, scale) : null, offset ? float32Values(args.backend, offset) : null];
      if (!xv || (scale && s?.length !== channels) || (offset && o?.length !== channels)) return fallback();
      const [out, mean, variance] = [float32Output(args.backend, xv.length, 'overwritten'), new Float32Array(channels), new Float32Array(channels)];
      addon.batchNormTrain(xv, rows, channels, s, o, args.attrs.varianceEpsilon, Boolean(args.attrs.relu), out, mean, variance);
      return [args.backend.makeTensorInfo(x.shape.slice(), 'float32', out), args.backend.makeTensorInfo([channels], 'float32', mean), args.backend.makeTensorInfo([channels], 'float32', variance)];
    },
    // Per-channel vectors: a loop here costs less than an addon call. Math.fround after every operation
    // keeps the float32 rounding of core's element-wise version (scalars are float32 tensors there too).
    [nn.RUNNING_STATS_KERNEL]: (args, fallback) => {
      const { runningMean, runningVar, mean, variance } = args.inputs;
      const values = [runningMean, runningVar, mean, variance].map((t) => float32Values(args.backend, t));
      const n = values[0]?.length;
      if (values.some((v) => !v || v.length !== n)) return fallback();
      const [rm, rv, m, v] = values as Float32Array[];
      const f = Math.fround;
      const factor = f(args.attrs.factor), keep = f(1 - args.attrs.factor), unbias = f(args.attrs.count / (args.attrs.count - 1));
      const newMean = new Float32Array(n!), newVar = new Float32Array(n!);
      for (let c = 0; c < n!; c++) {
        newMean[c] = f(f(rm[c]! * keep) + f(m[c]! * factor));
        newVar[c] = f(f(rv[c]! * keep) + f(f(v[c]! * unbias) * factor));
      }
      return [args.backend.makeTensorInfo(runningMean.shape.slice(), 'float32', newMean), args.backend.makeTensorInfo(runningVar.shape.slice(), 'float32', newVar)];
    },
    [nn.BATCH_NORM_RELU_GRAD_KERNEL]: (args, fallback) => {
      const { x, dy, scale, offset } = args.inputs;
      const { rows, channels } = rowsAndChannels(x);
      const [xv, dyv] = [float32Values(args.backend, x), float32Values(args.backend, dy)];
      const [s, o] = [scale ? float32Values(args.backend, scale) : null, offset ? float32Values(args.backend, offset) : null];
      if (!xv || !dyv || dyv.length !== xv.length || (scale && s?.length !== channels) || (offset && o?.length !== channels)) return fallback();
      const [dx, dScale, dOffset] = [float32Output(args.backend, xv.length, 'overwritten'), new Float32Array(channels), new Float32Array(channels)];
      addon.batchNormReluGrad(xv, dyv, rows, channels, s, o, args.attrs.varianceEpsilon, dx, dScale, dOffset);
      return [args.backend.makeTensorInfo(x.shape.slice(), 'float32', dx), args.backend.makeTensorInfo([channels], 'float32', dScale), args.backend.makeTensorInfo([channels], 'float32', dOffset)];
    },
    [nn.BATCH_NORM_GRAD_KERNEL]: (args, fallback) => {
      const { x, dy, scale } = args.inputs;
      const [xv, dyv] = [float32Values(args.backend, x), float32Values(args.backend, dy)];
      const { rows, channels } = rowsAndChannels(x);
      const scaleValues = scale ? float32Values(args.backend, scale) : null;
      if (!xv || !dyv || dyv.length !== xv.length || (scale && scaleValues?.length !== channels)) return fallback();
      const dx = float32Output(args.backend, xv.length, 'overwritten');
      const dScale = new Float32Array(channels);
      const dOffset = new Float32Array(channels);
      addon.batchNormGrad(xv, dyv, rows, channels, scaleValues, args.attrs.varianceEpsilon, dx, dScale, dOffset);
      return [
        args.backend.makeTensorInfo(x.shape.slice(), 'float32', dx),
        args.backend.makeTensorInfo([channels], 'float32', dScale),
        args.backend.makeTensorInfo([channels], 'float32', dOffset),
      ];
    },
  };
}

/**
 * Core's SGD_UPDATE_KERNEL: an SGD step in one pass over the parameter, its gradient and buffer.
 * When no other tensor shares the parameter's (and buffer's) data, the step writes into those
 * arrays and hands them out under new tensors, as PyTorch updates in place: allocating (and
 * page-faulting) two fresh parameter-sized arrays per step cost more than the arithmetic.
 */
function sgdUpdateKernel(addon: NativeAddon): ReplacementKernel {
  return (args, fallback) => {
    const { param, grad, buffer } = args.inputs;
    const [paramValues, gradValues] = [float32Values(args.backend, param), float32Values(args.backend, grad)];
    const bufferValues = buffer ? float32Values(args.backend, buffer) : null;
    if (!paramValues || !gradValues || gradValues.length !== paramValues.length || (buffer && bufferValues?.length !== paramValues.length)) return fallback();
    const { lr, momentum, dampening, weightDecay, nesterov } = args.attrs as { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean };
    const exclusive = (tensor: tf.TensorInfo) => args.backend.refCount(tensor.dataId) === 1;
    const inPlace = exclusive(param) && (!buffer || exclusive(buffer));
    const fresh = () => float32Output(args.backend, paramValues.length, 'overwritten');
    const newParam = inPlace ? paramValues : fresh();
    const newBuffer = momentum === 0 ? null : inPlace && bufferValues ? bufferValues : fresh();
    addon.sgdUpdate(paramValues, gradValues, bufferValues, newParam, newBuffer, lr, momentum, dampening, weightDecay, nesterov);
    const outputs = [args.backend.makeTensorInfo(param.shape.slice(), 'float32', newParam)];
    if (newBuffer) outputs.push(args.backend.makeTensorInfo(param.shape.slice(), 'float32', newBuffer));
    return outputs;
  };
}

/**
 * Core's ADAM_UPDATE_KERNEL: an Adam/AdamW step in one pass over the parameter, its gradient and
 * moments, in place (as SGD's) when no other tensor shares the parameter's or a moment's data.
 */
function adamUpdateKernel(addon: NativeAddon): ReplacementKernel {
  return (args, fallback) => {
    const { param, grad, expAvg, expAvgSq, maxExpAvgSq } = args.inputs;
    const { lr, beta1, beta2, eps, weightDecay, decoupled, amsgrad, step } = args.attrs as { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; decoupled: boolean; amsgrad: boolean; step: number };
    const paramValues = float32Values(args.backend, param);
    const n = paramValues?.length ?? -1;
    const optional = (t: tf.TensorInfo | undefined) => (t ? float32Values(args.backend, t) : null);
    const [gradValues, m, v, vMax] = [float32Values(args.backend, grad), optional(expAvg), optional(expAvgSq), optional(maxExpAvgSq)];
    if (!paramValues || gradValues?.length !== n || [[expAvg, m], [expAvgSq, v], [maxExpAvgSq, vMax]].some(([t, values]) => t && (values as Float32Array | null)?.length !== n)) return fallback();
    const exclusive = (t: tf.TensorInfo | undefined) => t === undefined || args.backend.refCount(t.dataId) === 1;
    const inPlace = exclusive(param) && exclusive(expAvg) && exclusive(expAvgSq) && exclusive(maxExpAvgSq);
    const target = (values: Float32Array | null) => (inPlace && values ? values : float32Output(args.backend, n, 'overwritten'));
    const [newParam, newM, newV] = [target(paramValues), target(m), target(v)];
    const newMax = amsgrad ? target(vMax) : null;
    addon.adamUpdate(paramValues, gradValues, m, v, amsgrad ? vMax : null, newParam, newM, newV, newMax, Float64Array.of(lr, beta1, beta2, eps, weightDecay, step), decoupled, amsgrad);
    const out = (values: Float32Array) => args.backend.makeTensorInfo(param.shape.slice(), 'float32', values);
    return [out(newParam), out(newM), out(newV), ...(newMax ? [out(newMax)] : [])];
  };
}

/** Every kernel the `native` backend runs in the addon; the rest of its kernels are cpu's. */
export function nativeKernels(addon: NativeAddon): Record<string, ReplacementKernel> {
  const conv = convKernels(addon);

  const batchMatMul = (args: KernelArgs, fallback: () => tf.TensorInfo | tf.TensorInfo[]) => {
    const { a, b } = args.inputs;
    const { transposeA = false, transposeB = false } = args.attrs;
    if (a.shape.length < 2 || b.shape.length < 2) return fallback();
    const [aRows, aCols] = a.shape.slice(-2);
    const [bRows, bCols] = b.shape.slice(-2);
    const [m, k] = transposeA ? [aCols, aRows] : [aRows, aCols];
    const [kB, n] = transposeB ? [bCols, bRows] : [bRows, bCols];
    if (k !== kB) return fallback(); // let the cpu kernel report the shape error
    const epilogue = args.inputs.bias || args.attrs.activation ? nativeEpilogue(args, n) : { bias: null, code: 0, alpha: 0 };
    if (!epilogue) return fallback();
    const { outBatch, aOffsets, bOffsets } = broadcastBatchOffsets(a.shape.slice(0, -2), b.shape.slice(0, -2), m * k, k * n);
    const result = runFloat32(args, [...outBatch, m, n], [a, b], ([av, bv], out) => {
      aOffsets.forEach((aOffset, i) => addon.matMul(av, aOffset, bv, bOffsets[i], out, i * m * n, m, n, k, transposeA, transposeB));
      if (epilogue.bias || epilogue.code !== 0) addon.biasActivation(out, aOffsets.length * m, n, epilogue.bias, epilogue.code, epilogue.alpha);
    }, 'overwritten');
    return result ?? fallback();
  };

  const fusedConv = (depthwise: boolean): ReplacementKernel => (args, fallback) => {
    const { x, filter } = args.inputs;
    const info = convInfo(x.shape, filter.shape, args.attrs, depthwise);
    const epilogue = info && nativeEpilogue(args, info.outChannels);
    if (!info || !epilogue) return fallback();
    const geometry = packGeometry(windowGeometry(info));
    const result = runFloat32(args, info.outShape, [x, filter], ([xv, fv], out) => {
      (depthwise ? addon.depthwiseConv2d : addon.conv2d)(xv, fv, out, geometry);
      addon.biasActivation(out, out.length / info.outChannels, info.outChannels, epilogue.bias, epilogue.code, epilogue.alpha);
    });
    return result ?? fallback();
  };

  const unary = Object.fromEntries(Object.entries(UNARY_OP_CODES).map(([name, code]) => [name, unaryKernel(addon, code)]));

  return {
    ...conv,
    ...dataKernels,
    ...elementwiseKernels(addon),
    ...unary,
    [tf.FusedBatchNorm]: batchNormKernel(addon),
    ...batchNormTrainingKernels(addon),
    [SGD_UPDATE_KERNEL]: sgdUpdateKernel(addon),
    [ADAM_UPDATE_KERNEL]: adamUpdateKernel(addon),
    [tf.Softmax]: (args, fallback) => {
      const { logits } = args.inputs;
      const rank = logits.shape.length;
      if (rank === 0 || (args.attrs.dim !== -1 && args.attrs.dim !== rank - 1)) return fallback();
      const columns = logits.shape[rank - 1];
      return runFloat32(args, logits.shape, [logits], ([xv], out) => addon.softmax(xv, out, columns === 0 ? 0 : xv.length / columns, columns), 'overwritten') ?? fallback();
    },
    // float32 TopK in the addon (a JS loop over 16K rows ran ~1.8 ms in a training step, not yet
    // optimised by V8 when called twice an iteration); other dtypes and NaNs take the JS kernel.
    [tf.TopK]: (args, fallback) => {
      const values = float32Values(args.backend, args.inputs.x);
      const shape = insertionTopK(args);
      const jsTopK = () => dataKernels[tf.TopK]!(args, fallback);
      if (!values || !shape) return jsTopK();
      const topValues = float32Output(args.backend, shape.rows * shape.k, 'overwritten');
      const topIndices = new Int32Array(shape.rows * shape.k);
      return addon.topK(values, shape.rows, shape.size, shape.k, topValues, topIndices) ? topKOutputs(args, shape.k, topValues, topIndices) : jsTopK();
    },
    [tf.FusedConv2D]: fusedConv(false),
    [tf.FusedDepthwiseConv2D]: fusedConv(true),
    [tf.DepthwiseConv2dNative]: (args, fallback) => {
      const { x, filter } = args.inputs;
      const info = convInfo(x.shape, filter.shape, args.attrs, true);
      const geometry = info && packGeometry(windowGeometry(info));
      return (geometry && runFloat32(args, info.outShape, [x, filter], ([xv, fv], out) => addon.depthwiseConv2d(xv, fv, out, geometry))) ?? fallback();
    },
    [tf.DepthwiseConv2dNativeBackpropInput]: (args, fallback) => {
      const { dy, filter } = args.inputs;
      const info = convInfo(args.attrs.inputShape, filter.shape, args.attrs, true);
      const geometry = info && packGeometry(windowGeometry(info));
      return (geometry && runFloat32(args, info.inShape, [dy, filter], ([dyv, fv], dx) => addon.depthwiseConv2dBackpropInput(dyv, fv, dx, geometry))) ?? fallback();
    },
    [tf.DepthwiseConv2dNativeBackpropFilter]: (args, fallback) => {
      const { x, dy } = args.inputs;
      const info = convInfo(x.shape, args.attrs.filterShape, args.attrs, true);
      const geometry = info && packGeometry(windowGeometry(info));
      return (geometry && runFloat32(args, args.attrs.filterShape, [x, dy], ([xv, dyv], dw) => addon.depthwiseConv2dBackpropFilter(xv, dyv, dw, geometry))) ?? fallback();
    },
    [tf.BatchMatMul]: batchMatMul,
    [tf._FusedMatMul]: batchMatMul,
    [tf.MaxPool]: (args, fallback) => {
      const { x } = args.inputs;
      const geometry = poolGeometry(x, args.attrs);
      const outShape = [geometry[0], geometry[4], geometry[5], geometry[6]];
      return runFloat32(args, outShape, [x], ([xv], out) => addon.maxPool(xv, out, geometry), 'overwritten') ?? fallback();
    },
    [tf.MaxPoolGrad]: (args, fallback) => {
      const { dy, input } = args.inputs;
      const geometry = poolGeometry(input, args.attrs);
      return runFloat32(args, input.shape, [dy, input], ([dyv, xv], dx) => addon.maxPoolGrad(dyv, xv, dx, geometry)) ?? fallback();
    },
    [tf.AvgPool]: (args, fallback) => {
      const { x } = args.inputs;
      const geometry = poolGeometry(x, args.attrs);
      const outShape = [geometry[0], geometry[4], geometry[5], geometry[6]];
      return runFloat32(args, outShape, [x], ([xv], out) => addon.avgPool(xv, out, geometry), 'overwritten') ?? fallback();
    },
    [tf.AvgPoolGrad]: (args, fallback) => {
      const { dy, input } = args.inputs;
      const geometry = poolGeometry(input, args.attrs);
      return runFloat32(args, input.shape, [dy], ([dyv], dx) => addon.avgPoolGrad(dyv, dx, geometry)) ?? fallback();
    },
    [tf.ResizeBilinear]: (args, fallback) => {
      const { images } = args.inputs;
      const [outH, outW] = args.attrs.size as [number, number];
      const geometry = resizeGeometry(images, outH, outW);
      const { alignCorners = false, halfPixelCenters = false } = args.attrs;
      const outShape = [images.shape[0], outH, outW, images.shape[3]];
      return runFloat32(args, outShape, [images], ([xv], out) => addon.resizeBilinear(xv, out, geometry, alignCorners, halfPixelCenters), 'overwritten') ?? fallback();
    },
    // The exact adjoint of ResizeBilinear, half-pixel centres included (tfjs's cpu kernel ignores
    // them and swaps H and W in its output shape).
    [tf.ResizeBilinearGrad]: (args, fallback) => {
      const { images, dy } = args.inputs;
      const geometry = resizeGeometry(images, dy.shape[1], dy.shape[2]);
      const { alignCorners = false, halfPixelCenters = false } = args.attrs;
      return runFloat32(args, images.shape, [dy], ([dyv], dx) => addon.resizeBilinearGrad(dyv, dx, geometry, alignCorners, halfPixelCenters)) ?? fallback();
    },
  };
}
