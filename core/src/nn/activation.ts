import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { isShapesOnly, reportFlops } from './flops';
import { SegkitError } from '../errors';
import { formatValue } from '../config/validation';
import type { OnnxExportContext, OnnxValue } from '../export/onnx/types';

/** Element-wise activation layers; MMCV counts one FLOP per output element. */
abstract class Activation extends Module {
  protected abstract apply(x: tf.Tensor): tf.Tensor;
  /** The same function as one ONNX node. */
  protected abstract applyOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue;

  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    return this.applyOnnx(ctx, x);
  }

  override forward<T extends tf.Tensor>(x: T): T {
    reportFlops(this, x.size);
    return isShapesOnly() ? x : (this.apply(x) as T);
  }
}

export class ReLU extends Activation {
  protected apply(x: tf.Tensor): tf.Tensor {
    return tf.relu(x);
  }

  protected applyOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    return ctx.node('Relu', [x], { shape: x.shape });
  }
}

export class ReLU6 extends Activation {
  protected apply(x: tf.Tensor): tf.Tensor {
    return tf.relu6(x);
  }

  protected applyOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    return ctx.node('Clip', [x, ctx.constant([0], []), ctx.constant([6], [])], { shape: x.shape });
  }
}

export class LeakyReLU extends Activation {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }

  protected apply(x: tf.Tensor): tf.Tensor {
    return tf.leakyRelu(x, this.negativeSlope);
  }

  protected applyOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    return ctx.node('LeakyRelu', [x], { attributes: { alpha: ctx.float(this.negativeSlope) }, shape: x.shape });
  }
}

export class Sigmoid extends Activation {
  protected apply(x: tf.Tensor): tf.Tensor {
    return tf.sigmoid(x);
  }

  protected applyOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    return ctx.node('Sigmoid', [x], { shape: x.shape });
  }
}

export class Tanh extends Activation {
  protected apply(x: tf.Tensor): tf.Tensor {
    return tf.tanh(x);
  }

  protected applyOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    return ctx.node('Tanh', [x], { shape: x.shape });
  }
}

/** MMCV's `act_cfg`. */
export interface ActivationConfig {
  type: string;
  inplace?: boolean;
  negative_slope?: number;
}

/** MMCV's `build_activation_layer` (`inplace` is accepted and has no meaning here). */
export function buildActivation(cfg: ActivationConfig, path = 'act_cfg'): Module {
  if (!cfg || typeof cfg !== 'object' || typeof cfg.type !== 'string') {
    throw new SegkitError(`${path}: expected an object with a 'type' (ReLU, LeakyReLU, ...), got ${formatValue(cfg)}`, path);
  }
  const { type, inplace: _inplace, negative_slope: negativeSlope, ...rest } = cfg;
  const unknown = Object.keys(rest);
  if (unknown.length) throw new SegkitError(`${path}.${unknown[0]}: unknown option of activation ${type}`, path);
  if (negativeSlope !== undefined && type !== 'LeakyReLU') throw new SegkitError(`${path}.negative_slope: only LeakyReLU takes it`, path);
  switch (type) {
    case 'ReLU':
      return new ReLU();
    case 'ReLU6':
      return new ReLU6();
    case 'LeakyReLU':
      return new LeakyReLU(negativeSlope ?? 0.01);
    case 'Sigmoid':
      return new Sigmoid();
    case 'Tanh':
      return new Tanh();
    default:
      throw new SegkitError(`${path}.type: unknown activation type '${type}'; supported: ReLU, ReLU6, LeakyReLU, Sigmoid, Tanh`, path);
  }
}
