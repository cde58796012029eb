import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { checkDecodeLossConfig, computeDecodeLosses, createKernel, parseLosses, type Kernel, type Loss, type PixelSampler } from '@segkit/core';
import { plugin } from '../src/index';
import { plugin as crossEntropyPlugin } from '@segkit/loss-cross-entropy';
import { plugin as dicePlugin } from '@segkit/loss-dice';

const quiet = { info: () => undefined, warn: () => undefined };
const EPS = 1.1920928955078125e-7;

describe('decode-head losses with CE ×1.0 + Dice ×3.0 and an OHEM sampler (SPEC §1e)', () => {
  let kernel: Kernel;
  let losses: Loss[];
  let sampler: PixelSampler;
  before(async () => {
    kernel = await createKernel({ plugins: [plugin, crossEntropyPlugin, dicePlugin], backend: 'cpu', logger: quiet });
    const extra = { numClasses: 2, head: 'model.decode_head' };
    losses = [
      kernel.build('losses', { type: 'CrossEntropyLoss', loss_name: 'loss_ce', loss_weight: 1.0 }, { path: 'model.decode_head.loss_decode.0', parent: extra }),
      kernel.build('losses', { type: 'DiceLoss', loss_name: 'loss_dice', loss_weight: 3.0 }, { path: 'model.decode_head.loss_decode.1', parent: extra }),
    ];
    sampler = kernel.build('samplers', { type: 'OHEMPixelSampler', thresh: 0.5, min_kept: 2 }, { path: 'model.decode_head.sampler' });
  });

  // A 1×1 logit map [ln 0.7, ln 0.3] upsampled (bilinear) to the 2×2 labels: p = (0.7, 0.3) at every pixel.
  const labelsData = [[[0, 1], [0, 255]]];
  // OHEM: valid GT probabilities 0.7, 0.3, 0.7 → k = min(2, 2) → threshold 0.7 → only pixel 1 (p 0.3) is kept.
  const expectedCe = -Math.log(0.3) / 4; // weighted by the OHEM map, mean over all 4 pixels
  // Dice: class 0 t = [1,0,1,0]: 1 − (2·1.4 + 1)/(4·0.49 + 2 + 1); class 1 (255 → class 1 in the denominator):
  //       t = [0,1,0,1], valid numerator 0.3: 1 − (2·0.3 + 1)/(4·0.09 + 2 + 1); mean of the two, × 3
  const expectedDice = (3 * (1 - 3.8 / 4.96 + (1 - 1.6 / 3.36))) / 2;
  const expectedAcc = ((2 + EPS) * 100) / (3 + EPS); // argmax is class 0 everywhere; 2 of 3 valid pixels

  it('returns loss_ce, loss_dice and acc_seg with hand-computed values and frees every intermediate', () => {
    const segLogits = tf.tensor4d([Math.log(0.7), Math.log(0.3)], [1, 1, 1, 2]);
    const labels = tf.tensor3d(labelsData, [1, 2, 2], 'int32');
    const before = tf.memory().numTensors;
    const result = computeDecodeLosses(segLogits, labels, { losses, sampler, alignCorners: false, ignoreIndex: 255, headName: 'model.decode_head' });
    expect(Object.keys(result)).to.deep.equal(['loss_ce', 'loss_dice', 'acc_seg']);
    expect(result.loss_ce!.dataSync()[0]).to.be.closeTo(expectedCe, 1e-5);
    expect(result.loss_dice!.dataSync()[0]).to.be.closeTo(expectedDice, 1e-5);
    expect(result.acc_seg!.dataSync()[0]).to.be.closeTo(expectedAcc, 1e-4);
    expect(tf.memory().numTensors).to.equal(before + 3);
    tf.dispose([segLogits, labels, ...Object.values(result)]);
  });

  it('parseLosses sums decode.loss_ce + decode.loss_dice + aux.loss_ce + aux.loss_dice, logs acc_seg, loss last', async () => {
    const before = tf.memory().numTensors;
    const segLogits = tf.tensor4d([Math.log(0.7), Math.log(0.3)], [1, 1, 1, 2]);
    const labels = tf.tensor3d(labelsData, [1, 2, 2], 'int32');
    const decode = computeDecodeLosses(segLogits, labels, { losses, sampler, alignCorners: false, ignoreIndex: 255, headName: 'model.decode_head' });
    // the tutorial changes the auxiliary head the same way (no sampler there): CE over all 4 pixels
    const aux = computeDecodeLosses(segLogits, labels, { losses, alignCorners: false, ignoreIndex: 255, headName: 'model.auxiliary_head' });
    const dict: Record<string, tf.Tensor> = {};
    for (const [key, value] of Object.entries(decode)) dict[`decode.${key}`] = value;
    for (const [key, value] of Object.entries(aux)) dict[`aux.${key}`] = value;
    const { loss, logVars } = await parseLosses(dict);
    const auxCe = -(2 * Math.log(0.7) + Math.log(0.3)) / 4;
    expect(Object.keys(logVars)).to.deep.equal(['decode.loss_ce', 'decode.loss_dice', 'decode.acc_seg', 'aux.loss_ce', 'aux.loss_dice', 'aux.acc_seg', 'loss']);
    expect(logVars['aux.loss_ce']).to.be.closeTo(auxCe, 1e-5);
    expect(logVars.loss).to.be.closeTo(expectedCe + expectedDice + auxCe + expectedDice, 1e-5);
    expect((await loss.data())[0]).to.be.closeTo(logVars.loss!, 1e-6);
    tf.dispose([loss, segLogits, labels, ...Object.values(dict)]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('warns at build time about OHEM with a loss that ignores pixel weights, and about a loss_name without "loss"', () => {
    const warnings: string[] = [];
    const dice = kernel.build('losses', { type: 'DiceLoss', loss_name: 'dice' });
    checkDecodeLossConfig([losses[0]!, dice], sampler, 'model.decode_head', (m) => warnings.push(m));
    expect(warnings).to.deep.equal([
      "model.decode_head.loss_decode.1: loss_name 'dice' does not contain 'loss', so its value is logged but not added to the trained total; rename it to 'loss_dice'",
      "model.decode_head: OHEMPixelSampler (sampler) is combined with DiceLoss 'dice', which ignores pixel weights: the sampled pixels do not change that loss, only the losses that use pixel weights",
    ]);
    const none: string[] = [];
    checkDecodeLossConfig([losses[0]!], sampler, 'model.decode_head', (m) => none.push(m));
    checkDecodeLossConfig(losses, null, 'model.auxiliary_head', (m) => none.push(m));
    expect(none).to.deep.equal([]);
  });
});
