import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { float32Output, type InitialValues } from './buffer-pool';

/** What a replacement kernel receives: tfjs's kernel arguments, typed for cpu-like backends. */
export interface KernelArgs {
  /** Declared inputs are present; optional ones (bias, preluActivationWeights) may be undefined. */
  inputs: Record<string, tf.TensorInfo>;
  backend: MathBackendCPU;
  // tfjs hands each kernel its own attribute record; they are read field by field.
  attrs: Record<string, any>;
}

type KernelResult = tf.TensorInfo | tf.TensorInfo[];

/**
 * A replacement kernel. It returns its result, or calls `fallback()` (the kernel it replaced) for
 * cases it does not handle (other dtypes, NCHW, unsupported fused activations).
 */
export type ReplacementKernel = (args: KernelArgs, fallback: () => KernelResult) => KernelResult;

/**
 * Replaces kernels of `backendName` in tfjs's global registry; each replaced kernel stays reachable
 * as the replacement's fallback. Kernel names missing from the backend are registered without one.
 */
export function replaceKernels(backendName: string, replacements: Readonly<Record<string, ReplacementKernel>>): void {
  for (const [kernelName, replacement] of Object.entries(replacements)) {
    const original = tf.getKernel(kernelName, backendName);
    if (original) tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel({
      kernelName,
      backendName,
      kernelFunc: (args) => {
        const fallback = (): KernelResult => {
          if (!original) throw new Error(`${kernelName}: case not supported by the ${backendName} backend`);
          return original.kernelFunc(args);
        };
        return replacement(args as KernelArgs, fallback);
      },
    });
  }
}

/** Registers every kernel of `from` for `to` too (the new backend starts as a copy). */
export function copyKernels(from: string, to: string): void {
  for (const config of tf.getKernelsForBackend(from)) {
    if (!tf.getKernel(config.kernelName, to)) tf.registerKernel({ ...config, backendName: to });
  }
}

/**
 * The float32 values of a tensor on a cpu-like backend, or null (other dtypes take the fallback).
 * cpu's Cast from bool or int32 to float32 keeps the array it was given (segkit's Cast, data-kernels.ts,
 * converts instead): such values are copied into a Float32Array here (per call; the shared storage is
 * left alone), so they do not send the op to cpu's slow broadcasting kernel.
 */
export function float32Values(backend: MathBackendCPU, tensor: tf.TensorInfo | undefined): Float32Array | null {
  if (!tensor || tensor.dtype !== 'float32') return null;
  const values = backend.data.get(tensor.dataId).values;
  if (values instanceof Float32Array) return values;
  // The constructor converts typed arrays natively; Float32Array.from iterates (~10x slower).
  return ArrayBuffer.isView(values) && !(values instanceof DataView) ? new Float32Array(values as Uint8Array) : null;
}

/**
 * Runs one engine call that fills a float32 output of `shape`, or returns null to fall back. The
 * output is zero-filled unless `initial` says the call overwrites every element (on `native` it may
 * be a disposed tensor's array).
 */
export function runFloat32(args: KernelArgs, shape: readonly number[], inputs: readonly (tf.TensorInfo | undefined)[], run: (values: Float32Array[], out: Float32Array) => void, initial: InitialValues = 'zeroed'): tf.TensorInfo | null {
  const values = inputs.map((input) => float32Values(args.backend, input));
  if (values.some((v) => v === null)) return null;
  const out = float32Output(args.backend, sizeOf(shape), initial);
  run(values as Float32Array[], out);
  return args.backend.makeTensorInfo(shape.slice(), 'float32', out);
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}
