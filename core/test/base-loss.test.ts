import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { BaseLoss, checkPerClassList, loadLossClassWeight, lossWhere, type BuildContext, type LossParent, type LossCallOptions } from '../src';
import { tempTree } from '../src/testing';

interface ToyOptions {
  loss_weight: number;
  loss_name: string;
  reduction: 'none' | 'mean' | 'sum';
}

/** Per-pixel |logit of the label's class| on a [N,W,C] input, through BaseLoss's helpers. */
class ToyLoss extends BaseLoss<ToyOptions> {
  readonly usesPixelWeight = true;
  forward(logits: tf.Tensor, labels: tf.Tensor, call: LossCallOptions = {}): tf.Tensor {
    this.checkClassWeight(this.checkLogits(logits, labels));
    return tf.tidy(() => this.reduceAndScale(tf.sum(logits, -1), call.weight, this.reductionOf(call), call.avgFactor));
  }
}

function context(parent: LossParent, configDir = '/nowhere'): BuildContext<LossParent> {
  return { path: 'model.decode_head.loss_decode', configDir, parent } as BuildContext<LossParent>;
}

describe('BaseLoss and the loss build helpers', () => {
  const options: ToyOptions = { loss_weight: 2, loss_name: 'loss_toy', reduction: 'mean' };

  it('takes lossName from loss_name, names itself by class unless told, and reduces then scales by loss_weight', () => {
    const before = tf.memory().numTensors;
    const loss = new ToyLoss(options, null);
    expect(loss.lossName).to.equal('loss_toy');
    const logits = tf.tensor3d([[[1, 2], [3, 4]]]); // per-pixel sums 3 and 7
    const labels = tf.tensor2d([[0, 1]], [1, 2], 'int32');
    const read = (t: tf.Tensor) => {
      const data = Array.from(t.dataSync());
      t.dispose();
      return data;
    };
    expect(read(loss.forward(logits, labels))).to.deep.equal([10]); // mean 5 × 2
    expect(read(loss.forward(logits, labels, { reductionOverride: 'sum' }))).to.deep.equal([20]);
    expect(read(loss.forward(logits, labels, { reductionOverride: 'none' }))).to.deep.equal([6, 14]);
    expect(read(loss.forward(logits, labels, { avgFactor: 4 }))[0]).to.be.closeTo(5, 1e-5); // 10 / (4 + ε) × 2
    const tooFewLabels = tf.tensor2d([[0]], [1, 1], 'int32');
    expect(() => loss.forward(logits, tooFewLabels)).to.throw(/^ToyLoss: expected logits \[N,H,W,C\]/);
    expect(() => new ToyLoss(options, [1, 2, 3], 'here').forward(logits, labels)).to.throw('here: class_weight has 3 entries but the logits have 2 classes');
    tf.dispose([logits, labels, tooFewLabels]);
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });

  it('checkPerClassList accepts null and one entry per channel, and names the option otherwise', () => {
    expect(() => checkPerClassList('alpha', null, 3, 'X')).not.to.throw();
    expect(() => checkPerClassList('alpha', [1, 2, 3], 3, 'X')).not.to.throw();
    expect(() => checkPerClassList('alpha', [1, 2], 3, 'X')).to.throw('X: alpha has 2 entries but the logits have 3 classes');
  });

  it('lossWhere and loadLossClassWeight read the build context (path, config folder, head num_classes)', () => {
    const ctx = context({ numClasses: 2 }, tempTree({ 'w.json': '[0.5, 2]' }));
    expect(lossWhere(ctx, 'DiceLoss', 'loss_dice')).to.equal("model.decode_head.loss_decode (DiceLoss 'loss_dice')");
    expect(loadLossClassWeight('w.json', ctx)).to.deep.equal([0.5, 2]);
    expect(loadLossClassWeight(null, ctx)).to.equal(null);
    expect(() => loadLossClassWeight([1, 2, 3], ctx)).to.throw('model.decode_head.loss_decode.class_weight: expected 2 class weights (one per class, num_classes = 2), got 3');
    expect(loadLossClassWeight([1, 2, 3], context({}))).to.deep.equal([1, 2, 3]);
  });
});
