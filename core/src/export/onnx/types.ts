import type * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../../nn/module';
import type { InterpolationMode } from '../../nn/resize';

/** One dimension of a graph value: a number when known at export time, null when only known at run time. */
export type OnnxDim = number | null;

export type OnnxDtype = 'float32' | 'int32' | 'int64' | 'bool' | 'uint8';

/**
 * A value (tensor) of the ONNX graph being built. ONNX operators are NCHW: an image or feature map is
 * [N, C, H, W] here, where segkit's tfjs tensors are [N, H, W, C].
 */
export interface OnnxValue {
  readonly name: string;
  readonly shape: readonly OnnxDim[];
  readonly dtype: OnnxDtype;
}

/** A spatial size [H, W]: numbers when known at export time, else an int64 [2] value computed in the graph. */
export type OnnxSize = readonly [number, number] | OnnxValue;

/** A FLOAT attribute (a plain number is an INT attribute; see `ctx.float`). */
export interface OnnxFloatAttribute {
  readonly float: number;
}

/** A FLOATS attribute (a plain number array is INTS; see `ctx.floats`). */
export interface OnnxFloatsAttribute {
  readonly floats: readonly number[];
}

/** Attribute values: integers (INT, INTS), strings (STRING), or floats wrapped by `ctx.float` / `ctx.floats`. */
export type OnnxAttributeValue = number | readonly number[] | string | OnnxFloatAttribute | OnnxFloatsAttribute;

export interface OnnxNodeOptions {
  attributes?: Readonly<Record<string, OnnxAttributeValue>>;
  /** The output's shape (null where only known at run time). */
  shape: readonly OnnxDim[];
  /** The output's dtype (default float32). */
  dtype?: OnnxDtype;
}

/**
 * What a module's `exportOnnx(ctx, ...inputs)` builds its part of the graph with. A module mirrors its
 * `forward`: it emits nodes for its own computation (including the functional glue of its forward pass:
 * residual adds, concatenations, resizes) and hands its children to `ctx.call`, which runs their
 * `exportOnnx` (or fails naming the child's path and class when it has none).
 */
export interface OnnxExportContext {
  /** The ONNX opset the graph targets (ai.onnx domain). */
  readonly opset: number;
  /** Exports a child module with the given inputs (as its `forward` would be called). */
  call<R = OnnxValue>(module: Module, ...inputs: unknown[]): R;
  /** Emits one node with one output. Inputs may be null for omitted optional inputs. */
  node(opType: string, inputs: readonly (OnnxValue | null)[], options: OnnxNodeOptions): OnnxValue;
  /**
   * A weight as an initializer named `<module path>.<localName>` (a parameter's state-dict name), its axes
   * optionally permuted (`permutation[i]` = source axis of output axis i, as tf.transpose) and then given
   * `shape` (same size). The values are read when the model is serialized. A tf.Variable is borrowed; any
   * other tensor is taken over (disposed after serialization).
   */
  initializer(localName: string, tensor: tf.Tensor, options?: { permutation?: readonly number[]; shape?: readonly number[] }): OnnxValue;
  /** A small constant tensor (shape arguments, scales, means). */
  constant(values: readonly number[], dims: readonly number[], dtype?: 'float32' | 'int64'): OnnxValue;
  float(value: number): OnnxFloatAttribute;
  floats(values: readonly number[]): OnnxFloatsAttribute;
  /** Throws the export error for the current module: its path, class and `reason`. */
  unsupported(reason: string): never;

  // Functional glue several modules share.
  /** The value converted to `dtype` (ONNX Cast). */
  cast(x: OnnxValue, dtype: OnnxDtype): OnnxValue;
  /** Element-wise sum (residual connections). */
  add(a: OnnxValue, b: OnnxValue): OnnxValue;
  /** Concatenation along an NCHW axis (1 for channels). */
  concat(values: readonly OnnxValue[], axis: number): OnnxValue;
  /** Dimension `axis` of a value's shape at run time, as an int64 [1] value. */
  dimension(x: OnnxValue, axis: number): OnnxValue;
  /** [H, W] of an NCHW value: numbers when known, else computed from its shape at run time. */
  spatialSize(x: OnnxValue): OnnxSize;
  /** segkit's `nn.resize` (PyTorch's F.interpolate): bilinear (align_corners or half-pixel) or legacy nearest. */
  resize(x: OnnxValue, size: OnnxSize, options?: { mode?: InterpolationMode; alignCorners?: boolean }): OnnxValue;
  /** floor(size · factor) per axis of a spatial size (nn.Upsample's scale_factor). */
  scaleSize(size: OnnxSize, factor: number): OnnxSize;
}

/** A module that knows its ONNX nodes. */
export interface OnnxExportable {
  exportOnnx(ctx: OnnxExportContext, ...inputs: unknown[]): unknown;
}
