import * as tf from '@tensorflow/tfjs-core';
import { ADAM_UPDATE_KERNEL, backendHasKernel, z, type NamedParameter, type ParamGroup, type ParamGroupSpec } from '@segkit/core';
import { BaseOptimizer, type ParameterSlots } from './base';

const beta = z.number().min(0, { error: 'expected a beta in [0, 1)' }).lt(1, { error: 'expected a beta in [0, 1)' });

function adamSchema(defaultWeightDecay: number) {
  return z.object({
    lr: z.number().min(0, { error: 'expected a learning rate >= 0' }).default(1e-3),
    betas: z.tuple([beta, beta]).default([0.9, 0.999]),
    eps: z.number().min(0, { error: 'expected an epsilon >= 0' }).default(1e-8),
    weight_decay: z.number().min(0, { error: 'expected a weight decay >= 0' }).default(defaultWeightDecay),
    amsgrad: z.boolean().default(false),
  });
}

/** torch.optim.Adam's options and defaults. */
export const adamOptionsSchema = adamSchema(0);
/** torch.optim.AdamW's options and defaults (weight decay 0.01). */
export const adamWOptionsSchema = adamSchema(1e-2);
export type AdamOptions = z.infer<typeof adamOptionsSchema>;

/**
 * Adam as torch.optim.Adam (L2 penalty added to the gradient) or, with `decoupled`, AdamW
 * (p ← p·(1 − lr·wd) before the Adam step). Per parameter, with its own step count t:
 *   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  (amsgrad: v̂ = max(v̂, v))
 *   p ← p − lr/(1−β1^t) · m / (√v / √(1−β2^t) + eps).
 * The learning rate enters the update itself, so a group's lr is a real lr (scaling the gradient
 * would be cancelled by the normalisation).
 */
export class Adam extends BaseOptimizer {
  constructor(options: AdamOptions, groups: readonly ParamGroupSpec[], path = 'optimizer', decoupled = false) {
    super(decoupled ? 'AdamW' : 'Adam', groups, { ...options }, path);
  }

  private get decoupled(): boolean {
    return this.type === 'AdamW';
  }

  protected override get usesParameterSteps(): boolean {
    return true;
  }

  protected updateParameter(param: NamedParameter, grad: tf.Tensor, group: ParamGroup, slots: ParameterSlots, step: number): void {
    const [beta1, beta2] = group.betas as [number, number];
    const eps = group.eps as number;
    const lr = group.lr;
    const weightDecay = group.weight_decay;
    if (param.variable.dtype === 'float32' && grad.dtype === 'float32' && backendHasKernel(ADAM_UPDATE_KERNEL)) {
      // One pass over the parameter and its moments instead of about fifteen full-size element-wise ops.
      const present = (entries: [string, tf.Tensor | undefined][]) => Object.fromEntries(entries.filter(([, t]) => t !== undefined)) as tf.NamedTensorMap;
      const inputs = present([['param', param.variable], ['grad', grad], ['expAvg', slots.get('exp_avg')], ['expAvgSq', slots.get('exp_avg_sq')], ['maxExpAvgSq', group.amsgrad ? slots.get('max_exp_avg_sq') : undefined]]);
      const attrs = { lr, beta1, beta2, eps, weightDecay, decoupled: this.decoupled, amsgrad: Boolean(group.amsgrad), step };
      const [newParam, expAvg, expAvgSq, maxExpAvgSq] = tf.engine().runKernel(ADAM_UPDATE_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      this.setSlot(slots, 'exp_avg', expAvg!);
      this.setSlot(slots, 'exp_avg_sq', expAvgSq!);
      if (maxExpAvgSq) this.setSlot(slots, 'max_exp_avg_sq', maxExpAvgSq);
      param.variable.assign(newParam!);
      return;
    }
    let value: tf.Tensor = param.variable;
    let gradient = grad;
    if (weightDecay !== 0) {
      if (this.decoupled) value = tf.mul(value, 1 - lr * weightDecay);
      else gradient = tf.add(gradient, tf.mul(value, weightDecay));
    }
    const firstMoment = slots.get('exp_avg') ?? tf.zerosLike(value);
    const secondMoment = slots.get('exp_avg_sq') ?? tf.zerosLike(value);
    const m = tf.add(tf.mul(firstMoment, beta1), tf.mul(gradient, 1 - beta1));
    const v = tf.add(tf.mul(secondMoment, beta2), tf.mul(tf.square(gradient), 1 - beta2));
    this.setSlot(slots, 'exp_avg', m);
    this.setSlot(slots, 'exp_avg_sq', v);
    let denominatorMoment = v;
    if (group.amsgrad) {
      const previousMax = slots.get('max_exp_avg_sq');
      denominatorMoment = previousMax ? tf.maximum(previousMax, v) : v;
      this.setSlot(slots, 'max_exp_avg_sq', denominatorMoment);
    }
    const biasCorrection1 = 1 - beta1 ** step;
    const biasCorrection2 = 1 - beta2 ** step;
    const denominator = tf.add(tf.div(tf.sqrt(denominatorMoment), Math.sqrt(biasCorrection2)), eps);
    const update = tf.mul(tf.div(m, denominator), lr / biasCorrection1);
    param.variable.assign(tf.sub(value, update));
  }
}
