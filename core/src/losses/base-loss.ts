import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import type { Loss, LossCallOptions, Reduction } from '../components';
import type { BuildContext, LossParent } from '../plugin-system/registries';
import { loadClassWeight } from './class-weight';
import { checkLogitsMatchLabels } from './labels';
import { weightReduceLoss } from './reduce';

/** The options every MMSegmentation loss has (`reduction` where the loss reduces). */
export interface BaseLossOptions {
  loss_weight: number;
  loss_name: string;
  reduction?: Reduction;
}

/** Throws unless a per-class option list (`class_weight`, `alpha`, ...) has one entry per logit channel. */
export function checkPerClassList(name: string, list: readonly number[] | null | undefined, numChannels: number, where: string): void {
  if (list && list.length !== numChannels) throw new SegkitError(`${where}: ${name} has ${list.length} entries but the logits have ${numChannels} classes`);
}

/**
 * What the loss components share: `lossName` from `loss_name`, the loaded class weights, the name used
 * in errors (`where`), input checks and the final `weight_reduce_loss` × `loss_weight`.
 */
export abstract class BaseLoss<Options extends BaseLossOptions> implements Loss {
  readonly lossName: string;
  abstract readonly usesPixelWeight: boolean;
  /** Prefix of error messages; the class name unless the builder passes the config path. */
  protected readonly where: string;

  constructor(
    readonly options: Options,
    /** Loaded class weights (null when none). */
    readonly classWeight: readonly number[] | null,
    where?: string,
  ) {
    this.lossName = options.loss_name;
    this.where = where ?? new.target.name;
  }

  abstract forward(logits: tf.Tensor, labels: tf.Tensor, call?: LossCallOptions): tf.Tensor;

  /** Checks that the logits are the labels' shape plus a class axis; returns the number of channels. */
  protected checkLogits(logits: tf.Tensor, labels: tf.Tensor): number {
    checkLogitsMatchLabels(logits, labels, this.where);
    return logits.shape[logits.rank - 1]!;
  }

  /** Throws unless the class weights (when given) have one entry per channel. */
  protected checkClassWeight(numChannels: number): void {
    checkPerClassList('class_weight', this.classWeight, numChannels, this.where);
  }

  /** The call's `reductionOverride`, else the `reduction` option. */
  protected reductionOf(call: LossCallOptions): Reduction {
    return call.reductionOverride ?? this.options.reduction ?? 'mean';
  }

  /** The loss × `loss_weight`. */
  protected scaled(loss: tf.Tensor): tf.Tensor {
    return tf.mul(loss, this.options.loss_weight);
  }

  /** MMSegmentation's `weight_reduce_loss`, then × `loss_weight`. */
  protected reduceAndScale(loss: tf.Tensor, weight: tf.Tensor | null | undefined, reduction: Reduction, avgFactor?: number | tf.Scalar | null): tf.Tensor {
    return this.scaled(weightReduceLoss(loss, weight, reduction, avgFactor));
  }
}

/** The name a built loss uses in its errors: `<config path> (<type> '<loss_name>')`. */
export function lossWhere(ctx: BuildContext<LossParent>, type: string, lossName: string): string {
  return `${ctx.path} (${type} '${lossName}')`;
}

/**
 * Loads a loss's `class_weight` option at build time: files relative to the config, errors at
 * `<path>.class_weight`, and one weight per class when the head passes its `num_classes`.
 */
export function loadLossClassWeight(value: readonly number[] | string | null | undefined, ctx: BuildContext<LossParent>): number[] | null {
  return loadClassWeight(value, { path: `${ctx.path}.class_weight`, configDir: ctx.configDir, numClasses: ctx.parent.numClasses });
}
