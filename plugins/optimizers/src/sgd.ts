import * as tf from '@tensorflow/tfjs-core';
import { SGD_UPDATE_KERNEL, SegkitError, backendHasKernel, z, type NamedParameter, type ParamGroup, type ParamGroupSpec } from '@segkit/core';
import { BaseOptimizer, type ParameterSlots } from './base';

const nonNegative = (what: string) => z.number().min(0, { error: `expected ${what} >= 0` });

/** torch.optim.SGD's options (MMSegmentation passes them through): lr is required. */
export const sgdSchema = z.object({
  lr: z.number({ error: 'required: the learning rate (a number)' }).min(0, { error: 'expected a learning rate >= 0' }),
  momentum: nonNegative('a momentum').default(0),
  dampening: z.number().default(0),
  weight_decay: nonNegative('a weight decay').default(0),
  nesterov: z.boolean().default(false),
});
export type SGDOptions = z.infer<typeof sgdSchema>;

/**
 * Stochastic gradient descent exactly as torch.optim.SGD, per param group:
 *   d = g + wd·p;  buf = d (first step) or momentum·buf + (1 − dampening)·d;
 *   d = nesterov ? d + momentum·buf : buf;  p = p − lr·d.
 */
export class SGD extends BaseOptimizer {
  constructor(options: SGDOptions, groups: readonly ParamGroupSpec[], path = 'optimizer') {
    if (options.nesterov && (options.momentum <= 0 || options.dampening !== 0)) {
      throw new SegkitError(`${path}.nesterov: Nesterov momentum requires momentum > 0 and dampening = 0, got momentum ${options.momentum}, dampening ${options.dampening}`);
    }
    super('SGD', groups, { ...options }, path);
  }

  protected updateParameter(param: NamedParameter, grad: tf.Tensor, group: ParamGroup, slots: ParameterSlots): void {
    const momentum = group.momentum ?? 0;
    const dampening = group.dampening as number;
    const previous = slots.get('momentum_buffer');
    if (param.variable.dtype === 'float32' && grad.dtype === 'float32' && backendHasKernel(SGD_UPDATE_KERNEL)) {
      // One pass over the parameter instead of up to seven full-size element-wise ops.
      const inputs: tf.NamedTensorMap = previous ? { param: param.variable, grad, buffer: previous } : { param: param.variable, grad };
      const attrs = { lr: group.lr, momentum, dampening, weightDecay: group.weight_decay, nesterov: Boolean(group.nesterov) };
      const [newParam, newBuffer] = tf.engine().runKernel(SGD_UPDATE_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      if (newBuffer) this.setSlot(slots, 'momentum_buffer', newBuffer);
      param.variable.assign(newParam!);
      return;
    }
    let direction = group.weight_decay !== 0 ? tf.add(grad, tf.mul(param.variable, group.weight_decay)) : grad;
    if (momentum !== 0) {
      const buffer = previous ? tf.add(tf.mul(previous, momentum), tf.mul(direction, 1 - dampening)) : direction;
      this.setSlot(slots, 'momentum_buffer', buffer);
      direction = group.nesterov ? tf.add(direction, tf.mul(buffer, momentum)) : buffer;
    }
    param.variable.assign(tf.sub(param.variable, tf.mul(direction, group.lr)));
  }
}
