import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import type { Loss, PixelSampler } from '../components';
import { resize } from '../nn/resize';
import { accuracy } from '../losses/accuracy';

export interface DecodeLossOptions {
  /** The head's `loss_decode`, built, in config order. */
  losses: readonly Loss[];
  /** The head's `sampler` (e.g. OHEMPixelSampler). */
  sampler?: PixelSampler | null;
  alignCorners: boolean;
  ignoreIndex: number;
  /** Config path of the head (`model.decode_head`), for error messages. */
  headName: string;
}

/**
 * MMSegmentation's `BaseDecodeHead.losses`: resize the logits [N,h,w,C] to the label size [N,H,W]
 * (bilinear, the head's `align_corners`), let the sampler weight the pixels, evaluate every loss with
 * that weight and the head's ignore index — values of equal `loss_name` are summed — and add
 * `acc_seg` (top-1 accuracy in percent over non-ignored pixels).
 */
export function computeDecodeLosses(segLogits: tf.Tensor, labels: tf.Tensor, options: DecodeLossOptions): Record<string, tf.Tensor> {
  const { losses, sampler, alignCorners, ignoreIndex, headName } = options;
  if (segLogits.rank !== 4) throw new SegkitError(`${headName}: expected logits [N,h,w,C], got shape [${segLogits.shape.join(',')}]`);
  const labelMaps = labels.rank === 4 && labels.shape[3] === 1 ? tf.reshape(labels, labels.shape.slice(0, 3)) : labels;
  if (labelMaps.rank !== 3 || labelMaps.shape[0] !== segLogits.shape[0]) {
    if (labelMaps !== labels) labelMaps.dispose();
    throw new SegkitError(`${headName}: expected labels [N,H,W] with N = ${segLogits.shape[0]}, got shape [${labels.shape.join(',')}]`);
  }
  const result = tf.tidy(() => {
    const size: [number, number] = [labelMaps.shape[1]!, labelMaps.shape[2]!];
    const logits = resize(segLogits as tf.Tensor4D, size, { mode: 'bilinear', alignCorners });
    const weight = sampler ? sampler.sample(logits, labelMaps, { ignoreIndex, lossDecode: losses }) : undefined;
    const values: Record<string, tf.Tensor> = {};
    for (const loss of losses) {
      const value = loss.forward(logits, labelMaps, weight ? { weight, ignoreIndex } : { ignoreIndex });
      const existing = values[loss.lossName];
      values[loss.lossName] = existing ? tf.add(existing, value) : value;
    }
    values.acc_seg = accuracy(logits, labelMaps, { ignoreIndex });
    return values;
  });
  if (labelMaps !== labels) labelMaps.dispose();
  return result;
}

/**
 * Build-time checks of a head's losses (segkit's warnings; MMSegmentation is silent):
 * a `loss_name` without "loss" is logged but never trained, and a pixel sampler does nothing for a loss
 * that ignores pixel weights. The head calls this once at construction; `headPath` is its config path.
 */
export function checkDecodeLossConfig(losses: readonly Loss[], sampler: PixelSampler | null | undefined, headPath: string, warn: (message: string) => void): void {
  losses.forEach((loss, index) => {
    if (!loss.lossName.includes('loss')) {
      warn(
        `${headPath}.loss_decode${losses.length > 1 ? `.${index}` : ''}: loss_name '${loss.lossName}' does not contain 'loss', so its value is logged but not added to the trained total; rename it to 'loss_${loss.lossName}'`,
      );
    }
  });
  if (!sampler) return;
  const samplerType = componentName(sampler, 'the sampler');
  for (const loss of losses) {
    if (!loss.usesPixelWeight) {
      warn(
        `${headPath}: ${samplerType} (sampler) is combined with ${componentName(loss, 'a loss')} '${loss.lossName}', which ignores pixel weights: the sampled pixels do not change that loss, only the losses that use pixel weights`,
      );
    }
  }
}

/** A component's class name for messages (e.g. 'DiceLoss'), or `fallback` for plain objects. */
function componentName(component: object, fallback: string): string {
  const name = component.constructor?.name;
  return name && name !== 'Object' ? name : fallback;
}
