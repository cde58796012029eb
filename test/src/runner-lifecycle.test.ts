import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import {
  EventBus,
  Hook,
  SegkitError,
  createKernel,
  definePlugin,
  evaluateSegmentor,
  loadConfigAndKernel,
  predictSample,
  train,
  z,
  type Dataset,
  type RunnerView,
  type Segmentor,
} from '@segkit/core';
import type { Subscription } from 'rxjs';
import { tinyConfig } from './tiny-config';

/** Records every lifecycle call and counts the bus events it observes (to see that they stop after the run). */
class RecordingHook extends Hook {
  readonly name = 'RecordingHook';
  static readonly calls: string[] = [];
  static observed = 0;
  override observe(bus: EventBus): Subscription {
    return bus.subscribe(this.name, 'iter:end', () => (RecordingHook.observed += 1));
  }
  override beforeRun(runner: RunnerView) {
    RecordingHook.calls.push(`beforeRun ${runner.iter}`);
  }
  override afterTrainIter(runner: RunnerView) {
    RecordingHook.calls.push(`afterTrainIter ${runner.iter}`);
  }
  override afterVal(runner: RunnerView) {
    RecordingHook.calls.push(`afterVal ${runner.iter}`);
  }
  override afterRun() {
    RecordingHook.calls.push('afterRun');
  }
}

const recordingPlugin = definePlugin({
  name: 'recording-hook',
  version: '0.0.0',
  components: { hooks: [{ type: 'RecordingHook', schema: z.object({}), create: () => new RecordingHook() }] },
});

describe('runner lifecycle and the bugs issue 20 named', function () {
  this.timeout(600000);
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-lifecycle-'));
    const { synthDrive } = require('@segkit/datasets') as { synthDrive: (o: object) => Promise<unknown> };
    await synthDrive({ out: path.join(dir, 'data'), count: 4, size: [64, 64], seed: 3 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function setUp(name: string, overrides: Record<string, unknown>) {
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(tinyConfig(path.join(dir, 'data'), overrides)));
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`warning: ${m}`) };
    const { config, kernel } = await loadConfigAndKernel(file, { logger });
    return { config, kernel, lines, workDir: path.join(dir, name) };
  }

  it('hooks run in lifecycle order; evaluation tables reach the logger without TextLoggerHook; subscriptions end with the run', async () => {
    const { config, kernel, lines, workDir } = await setUp('lifecycle', { log_config: { interval: 2, hooks: [] }, custom_hooks: [{ type: 'RecordingHook' }] });
    await kernel.loadPlugin(recordingPlugin);
    RecordingHook.calls.length = 0;
    RecordingHook.observed = 0;
    await train({ kernel, config, workDir });
    expect(RecordingHook.calls).to.deep.equal([
      'beforeRun 0',
      'afterTrainIter 1',
      'afterTrainIter 2',
      'afterTrainIter 3',
      // RecordingHook (NORMAL priority) runs before EvalHook (LOW), whose evaluation then calls every afterVal.
      'afterTrainIter 4',
      'afterVal 4',
      'afterRun',
    ]);
    expect(RecordingHook.observed).to.equal(4);
    // Bug 4: after the run nothing stays subscribed to the kernel's bus.
    kernel.bus.emit({ type: 'iter:end', iter: 5, maxIters: 4, losses: {}, lrs: [], dataTime: 0, stepTime: 0, memory: { numTensors: 0, numBytes: 0, rssMB: 0 } });
    expect(RecordingHook.observed).to.equal(4);
    // Bug 3: no TextLoggerHook in log_config, yet the evaluation tables are logged.
    expect(lines.join('\n')).to.match(/per class results:\n\+-+/);
  });

  it('a save_best metric that evaluation never computes stops the run with its message (bug 2)', async () => {
    const { config, kernel, workDir } = await setUp('save-best', { checkpoint_config: { interval: 2, save_best: 'mIoU' } });
    let error: unknown;
    try {
      await train({ kernel, config, workDir });
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(SegkitError);
    expect((error as Error).message).to.equal("checkpoint_config.save_best: metric 'mIoU' is not in the evaluation results (aAcc, mDice, mAcc)");
    expect(fs.readdirSync(workDir).filter((f) => f.startsWith('best_'))).to.deep.equal([]);
  });

  it('evaluation applies a single-channel head\'s threshold (bug 1) and the dataset\'s ignore index', async () => {
    const before = tf.memory().numTensors;
    // Logit 0 everywhere: probability 0.5, above the default 0.3 but below this head's 0.8.
    const model = {
      numClasses: 2,
      alignCorners: false,
      inference: (images: tf.Tensor4D) => tf.zeros([1, images.shape[1], images.shape[2], 1]) as tf.Tensor4D,
      labelsFromLogits: (logits: tf.Tensor4D) => tf.cast(tf.greater(tf.sigmoid(tf.squeeze(logits, [3])), 0.8), 'int32') as tf.Tensor3D,
      training: false,
      train() {},
      eval() {},
    } as unknown as Segmentor;
    const sample = { img: { data: new Float32Array(2 * 2 * 3), shape: [2, 2, 3] }, img_shape: [2, 2, 3], ori_shape: [2, 2, 3] };
    expect(Array.from((await predictSample(model, sample, {})).data)).to.deep.equal([0, 0, 0, 0]);

    // Ground truth [0, 1, 2, 1] with ignore index 1: two pixels count, one of them right → aAcc 0.5 (0.25 if 255 were used).
    const dataset = {
      length: 1,
      classes: ['a', 'b', 'c'],
      palette: [],
      ignoreIndex: 1,
      get: async () => sample,
      getGroundTruth: async () => ({ data: Int32Array.of(0, 1, 2, 1), shape: [2, 2] }),
    } as unknown as Dataset;
    const threeClasses = { ...model, numClasses: 3, labelsFromLogits: (logits: tf.Tensor4D) => tf.zeros([1, logits.shape[1], logits.shape[2]], 'int32') as tf.Tensor3D };
    const result = await evaluateSegmentor(threeClasses as unknown as Segmentor, dataset, { testCfg: {}, metrics: ['mIoU'] });
    expect(result.metrics.aAcc).to.equal(0.5);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it("a head's own ignore_index reaches its losses", async () => {
    const kernel = await createKernel({ plugins: ['@segkit/head-fcn', '@segkit/loss-cross-entropy'], backend: 'cpu', logger: { info: () => undefined, warn: () => undefined } });
    const head = kernel.build('heads', { type: 'FCNHead', in_channels: 2, channels: 2, num_classes: 3, num_convs: 1, ignore_index: 2 }, { path: 'model.decode_head' });
    const before = tf.memory().numTensors;
    const values = tf.tidy(() => {
      const logits = tf.randomNormal([1, 4, 4, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
      const losses = head.losses(logits, tf.fill([1, 4, 4], 2, 'int32'));
      return [losses.loss_ce!.dataSync()[0]!, losses.acc_seg!.dataSync()[0]!];
    });
    // Every pixel is the head's ignore index: CE 0 and accuracy 100 ([≈1.10, ≈0] if 255 were passed).
    expect(values).to.deep.equal([0, 100]);
    expect(tf.memory().numTensors).to.equal(before);
    head.dispose();
  });
});
