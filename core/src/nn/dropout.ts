import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module';
import { nextOpSeed } from './random';
import type { OnnxExportContext, OnnxValue } from '../export/onnx/types';

/**
 * Dropout2d(p): in train mode zeroes whole channels of each sample with probability p and scales the
 * kept ones by 1/(1−p); in eval mode it returns its input unchanged.
 */
export class Dropout2d extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`Dropout2d: p must be in [0, 1], got ${p}`);
  }

  override forward<T extends tf.Tensor4D>(x: T): T {
    if (!this.training || this.p === 0) return x;
    return tf.tidy(() => {
      if (this.p === 1) return tf.zerosLike(x);
      const [n, , , c] = x.shape;
      const keep = tf.cast(tf.less(tf.randomUniform([n, 1, 1, c], 0, 1, 'float32', nextOpSeed()), 1 - this.p), 'float32');
      return tf.mul(x, tf.div(keep, 1 - this.p));
    }) as T;
  }

  /** Inference graphs are eval mode, where Dropout2d is the identity. */
  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    if (this.training && this.p > 0) ctx.unsupported('is in training mode; export a model in eval mode');
    return x;
  }
}
