import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { Conv2d } from './conv';
import { BatchNorm2d, buildNormLayer, type NormConfig, type NormLayer } from './norm';
import { ReLU, buildActivation, type ActivationConfig } from './activation';
import { isShapesOnly, reportFlops } from './flops';
import { constantInit, kaimingInit } from './init';
import { SegkitError } from '../errors';
import type { Pair } from './utils';
import type { OnnxExportContext, OnnxValue } from '../export/onnx/types';

export interface ConvModuleOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** 'auto': a bias only when no norm layer follows. */
  bias?: boolean | 'auto';
  conv_cfg?: { type: string } | null;
  norm_cfg?: NormConfig | null;
  /** Default ReLU; null for none. */
  act_cfg?: ActivationConfig | null;
  /** Config path for error messages. */
  path?: string;
}

/**
 * activation(norm(x)); a BatchNorm2d followed by a plain ReLU runs as one op (one fused kernel each way
 * on backends that have them, e.g. native), with the same values, gradients and FLOP count.
 */
export function normActivation(norm: NormLayer, activation: Module, x: tf.Tensor4D): tf.Tensor4D {
  if (norm instanceof BatchNorm2d && activation.constructor === ReLU) {
    reportFlops(activation, x.size);
    return norm.forward(x, { relu: true });
  }
  return activation.forward(norm.forward(x) as tf.Tensor4D) as tf.Tensor4D;
}

/**
 * activation(x + residual), the end of a residual block. With a plain ReLU and equal shapes the sum and
 * the ReLU are one op whose gradient reads only its output (dy where the output is > 0, for both
 * inputs), the values and gradients of tf.relu(tf.add(x, residual)): tfjs's Add would keep both of its
 * inputs and Relu the pre-activation sum alive for the backward pass, activations PyTorch frees.
 */
export function residualActivation(activation: Module, x: tf.Tensor4D, residual: tf.Tensor4D): tf.Tensor4D {
  if (activation.constructor !== ReLU || isShapesOnly() || !tf.util.arraysEqual(x.shape, residual.shape)) {
    return activation.forward(tf.add(x, residual) as tf.Tensor4D) as tf.Tensor4D;
  }
  reportFlops(activation, x.size);
  return addRelu(x, residual) as tf.Tensor4D;
}

const addRelu = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const save = args.pop() as tf.GradSaveFunc;
  const [x, residual] = args as [tf.Tensor, tf.Tensor];
  const value = tf.relu(tf.add(x, residual));
  save([value]);
  // Two tensors, not one object twice: tfjs's backward pass disposes a gradient it accumulates into.
  const gradFunc = (dy: tf.Tensor, [output]: tf.Tensor[]) => {
    const dx = tf.mul(dy, tf.step(output!));
    return [dx, tf.clone(dx)];
  };
  return { value, gradFunc };
});

/**
 * MMCV's ConvModule: conv → norm → activation, with MMCV's child names (`conv`, `bn`/`gn`, `activate`)
 * so parameter names match MMSegmentation's state dicts. Init as MMCV: Kaiming normal (fan_out) for
 * the conv (norm layers start at weight 1 / bias 0 anyway).
 */
export class ConvModule extends Module {
  readonly conv: Conv2d;
  readonly norm: NormLayer | null = null;
  readonly normName: string | null = null;
  readonly activate: Module | null = null;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options: ConvModuleOptions = {}) {
    super();
    const path = options.path ?? 'ConvModule';
    const convType = options.conv_cfg?.type;
    if (convType !== undefined && convType !== 'Conv2d' && convType !== 'Conv') {
      throw new SegkitError(`${path}.conv_cfg.type: unsupported conv type '${convType}' (supported: Conv2d)`, path);
    }
    const normCfg = options.norm_cfg ?? null;
    const actCfg = options.act_cfg === undefined ? { type: 'ReLU' } : options.act_cfg;
    const bias = options.bias === undefined || options.bias === 'auto' ? !normCfg : options.bias;
    this.conv = this.registerModule(
      'conv',
      new Conv2d(inChannels, outChannels, kernelSize, { stride: options.stride, padding: options.padding, dilation: options.dilation, groups: options.groups, bias }),
    );
    if (normCfg) {
      const { name, layer } = buildNormLayer(normCfg, outChannels, '', `${path}.norm_cfg`);
      this.norm = this.registerModule(name, layer);
      this.normName = name;
    }
    if (actCfg) this.activate = this.registerModule('activate', buildActivation(actCfg, `${path}.act_cfg`));
    const leaky = actCfg?.type === 'LeakyReLU';
    kaimingInit(this.conv.weight, { mode: 'fan_out', nonlinearity: leaky ? 'leaky_relu' : 'relu', a: leaky ? (actCfg?.negative_slope ?? 0.01) : 0 });
    if (this.conv.bias) constantInit(this.conv.bias, 0);
  }

  override forward(x: tf.Tensor4D, activate = true, norm = true): tf.Tensor4D {
    return tf.tidy(() => {
      let y = this.conv.forward(x);
      if (norm && activate && this.norm && this.activate) return normActivation(this.norm, this.activate, y);
      if (norm && this.norm) y = this.norm.forward(y) as tf.Tensor4D;
      if (activate && this.activate) y = this.activate.forward(y) as tf.Tensor4D;
      return y;
    });
  }

  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue, activate = true, norm = true): OnnxValue {
    let y = ctx.call(this.conv, x);
    if (norm && this.norm) y = ctx.call(this.norm, y);
    if (activate && this.activate) y = ctx.call(this.activate, y);
    return y;
  }
}
