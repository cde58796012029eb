import { z } from 'zod';

/** `reduction` / `reduction_override` values. */
export const reductionSchema = z.enum(['none', 'mean', 'sum']);

/** `loss_weight`: the final multiplier of a loss. */
export const lossWeightSchema = z.number({ error: 'expected a number' }).default(1.0);

/** `ignore_index` of the losses that take their own (DiceLoss, TverskyLoss). */
export const ignoreIndexSchema = z.number().int({ error: 'expected an integer' }).default(255);

/** `loss_name` with its default; the decode head stores the value under this key. */
export function lossNameSchema(defaultName: string) {
  return z.string({ error: "expected a string such as 'loss_ce'" }).min(1, { error: "expected a non-empty name such as 'loss_ce'" }).default(defaultName);
}
