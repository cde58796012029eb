import * as tf from '@tensorflow/tfjs-core';
import { BINARY_OP_CODES, REDUCE_OP_CODES, type ElementwiseEngine } from './engine';
import { runFloat32, sizeOf, type ReplacementKernel } from './kernel-registry';

function binaryKernel(engine: ElementwiseEngine, opCode: number): ReplacementKernel {
  return (args, fallback) => {
    const { a, b } = args.inputs;
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const shapes = [a.shape, b.shape, outShape].map((shape) => Int32Array.from(shape));
    const result = runFloat32(args, outShape, [a, b], ([av, bv], out) => engine.binaryBroadcast(opCode, av, shapes[0], bv, shapes[1], out, shapes[2]), 'overwritten');
    return result ?? fallback();
  };
}

/** Reductions over contiguous axes (what batch-norm statistics and losses use); others fall back. */
function reduceKernel(engine: ElementwiseEngine, opCode: number, axisAttr: 'axis' | 'reductionIndices'): ReplacementKernel {
  return (args, fallback) => {
    const { x } = args.inputs;
    const axes = tf.util.parseAxisParam(args.attrs[axisAttr], x.shape).sort((p, q) => p - q);
    if (axes.length === 0 || axes.some((axis, i) => i > 0 && axis !== axes[i - 1] + 1)) return fallback();
    const first = axes[0], last = axes[axes.length - 1];
    const outer = sizeOf(x.shape.slice(0, first));
    const size = sizeOf(x.shape.slice(first, last + 1));
    const inner = sizeOf(x.shape.slice(last + 1));
    if (size === 0) return fallback();
    const reduced = x.shape.filter((_, i) => i < first || i > last);
    const outShape = args.attrs.keepDims ? tf.backend_util.expandShapeToKeepDim(reduced, axes) : reduced;
    return runFloat32(args, outShape, [x], ([xv], out) => engine.reduce(opCode, xv, out, outer, size, inner)) ?? fallback();
  };
}

/** Add/Sub/Multiply/RealDiv/SquaredDifference/Maximum/Minimum and Sum/Mean/Max/Min on an engine. */
export function elementwiseKernels(engine: ElementwiseEngine): Record<string, ReplacementKernel> {
  return {
    ...Object.fromEntries(Object.entries(BINARY_OP_CODES).map(([name, code]) => [name, binaryKernel(engine, code)])),
    ...Object.fromEntries(Object.entries(REDUCE_OP_CODES).map(([name, code]) => [name, reduceKernel(engine, code, name === tf.Max ? 'reductionIndices' : 'axis')])),
  };
}
