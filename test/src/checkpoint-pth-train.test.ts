import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { IterBasedRunner, loadConfigAndKernel, oihwToHwio, readCheckpointFile, readTorchCheckpoint, train, writeTorchCheckpoint, type TorchCheckpoint } from '@segkit/core';
import { tinyConfig } from './tiny-config';

/** `checkpoint_config.format: 'pth'`: CheckpointHook writes PyTorch checkpoints that segkit resumes from exactly. */
describe("training with checkpoint_config.format 'pth'", function () {
  this.timeout(600000);
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-pth-train-'));
    const { synthDrive } = require('@segkit/datasets') as { synthDrive: (o: object) => Promise<unknown> };
    await synthDrive({ out: path.join(dir, 'data'), count: 4, size: [64, 64], seed: 3 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function setUp(name: string, overrides: Record<string, unknown>) {
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(tinyConfig(path.join(dir, 'data'), { log_config: { interval: 2, hooks: [] }, ...overrides })));
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`warning: ${m}`) };
    const { config, kernel } = await loadConfigAndKernel(file, { logger });
    return { config, kernel, lines, workDir: path.join(dir, 'work', name) };
  }
  const checkpointFiles = (workDir: string) => fs.readdirSync(workDir).filter((name) => /\.(pth|safetensors)$/.test(name)).sort();
  /** Every tensor of two checkpoints (weights and segkit's optimizer slots) is bit-identical. */
  function expectSameTensors(a: TorchCheckpoint, b: TorchCheckpoint): void {
    expect([...b.tensors.keys()]).to.deep.equal([...a.tensors.keys()]);
    for (const [key, tensor] of a.tensors) expect(Array.from(b.tensors.get(key)!.data), key).to.deep.equal(Array.from(tensor.data));
    const slotsA = a.sections.get('segkit_optimizer')!;
    const slotsB = b.sections.get('segkit_optimizer')!;
    expect([...slotsB.keys()]).to.deep.equal([...slotsA.keys()]);
    for (const [key, tensor] of slotsA) expect(Array.from(slotsB.get(key)!.data), key).to.deep.equal(Array.from(tensor.data));
  }

  it('writes iter_2.pth, iter_4.pth, latest.pth and best_mDice_iter_4.pth holding the trained weights in PyTorch layout, with MMCV meta', async () => {
    const { config, kernel, workDir } = await setUp('straight', { checkpoint_config: { interval: 2, format: 'pth', save_best: 'mDice' } });
    const before = tf.memory().numTensors;
    const runner = new IterBasedRunner(kernel, config, { kernel, config, workDir });
    await runner.run();
    expect(checkpointFiles(workDir)).to.deep.equal(['best_mDice_iter_4.pth', 'iter_2.pth', 'iter_4.pth', 'latest.pth']);
    expect(fs.readFileSync(path.join(workDir, 'latest.pth')).equals(fs.readFileSync(path.join(workDir, 'iter_4.pth')))).to.equal(true);

    const model = runner.model.stateDict();
    for (const name of ['iter_4.pth', 'latest.pth', 'best_mDice_iter_4.pth']) {
      const contents = await readCheckpointFile(path.join(workDir, name));
      expect(contents.format, name).to.equal('pth');
      expect(contents.layout, name).to.equal('torch');
      expect([...contents.tensors.keys()], name).to.deep.equal([...model.keys()]);
      for (const [key, variable] of model) {
        let tensor = contents.tensors.get(key)!;
        if (tensor.shape.length === 4) tensor = oihwToHwio(tensor);
        expect(tensor.shape, key).to.deep.equal(variable.shape);
        expect(tensor.dtype, key).to.equal(variable.dtype === 'int32' ? 'int32' : 'float32');
        expect(Array.from(tensor.data), `${name} ${key}`).to.deep.equal(Array.from(await variable.data()));
      }
      expect(contents.notes, name).to.deep.equal(['optimizer state ignored (only the weights are loaded)']);
    }
    // BatchNorm's counter went to disk as int64 (what MMSegmentation's state dict holds) and reads back as 4.
    const latest = await readCheckpointFile(path.join(workDir, 'latest.pth'));
    const counter = [...latest.tensors.keys()].find((key) => key.endsWith('num_batches_tracked'))!;
    expect(Array.from(latest.tensors.get(counter)!.data)).to.deep.equal([4]);
    const meta = latest.meta!;
    expect(meta.CLASSES).to.deep.equal(['background', 'vessel']);
    expect(meta.PALETTE).to.deep.equal([[120, 120, 120], [6, 230, 230]]);
    expect(meta.iter).to.equal(4);
    const segkit = JSON.parse(meta.segkit as string) as { iter: number; optimizer: { type: string; step: number }; hooks: Record<string, { best?: { file: string } }> };
    expect(segkit.iter).to.equal(4);
    expect(segkit.optimizer.type).to.equal('SGD');
    // iter_4.pth is written before the evaluation of iteration 4; the best checkpoint records itself.
    expect(segkit.hooks.CheckpointHook).to.deep.equal({});
    const best = await readCheckpointFile(path.join(workDir, 'best_mDice_iter_4.pth'));
    const bestState = (JSON.parse(best.meta!.segkit as string) as typeof segkit).hooks.CheckpointHook!.best!;
    expect(bestState).to.include({ metric: 'mDice', iter: 4, file: 'best_mDice_iter_4.pth' });
    const early = await readCheckpointFile(path.join(workDir, 'iter_2.pth'));
    expect(early.meta!.iter).to.equal(2);
    expect(Array.from(early.tensors.get(counter)!.data)).to.deep.equal([2]);
    runner.dispose();
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });

  it('--resume-from iter_2.pth restores optimizer, iteration and data order: iteration 4 equals the uninterrupted run bit for bit', async () => {
    const { config, kernel, lines, workDir } = await setUp('resumed', { checkpoint_config: { interval: 2, format: 'pth', save_best: 'mDice' } });
    const straight = path.join(dir, 'work', 'straight');
    const before = tf.memory().numTensors;
    await train({ kernel, config, workDir, resumeFrom: path.join(straight, 'iter_2.pth') });
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
    expect(lines).to.include(`resumed from ${path.join(straight, 'iter_2.pth')} at iteration 2`);
    expect(checkpointFiles(workDir)).to.deep.equal(['best_mDice_iter_4.pth', 'iter_4.pth', 'latest.pth']);
    const options = { sections: ['segkit_optimizer'] };
    const expected = await readTorchCheckpoint(path.join(straight, 'iter_4.pth'), options);
    const resumed = await readTorchCheckpoint(path.join(workDir, 'iter_4.pth'), options);
    // Momentum buffers for every trainable parameter (76 weights and biases of the tiny UNet and its heads).
    expect(expected.sections.get('segkit_optimizer')!.size).to.be.greaterThan(0);
    expectSameTensors(expected, resumed);
  });

  it('a damaged .pth to resume from is an error naming the newest intact iter_N.pth beside it', async () => {
    const { config, kernel, workDir } = await setUp('damaged', { checkpoint_config: { interval: 2, format: 'pth' } });
    const folder = path.join(dir, 'damaged-checkpoints');
    fs.mkdirSync(folder);
    for (const name of ['iter_2.pth', 'iter_4.pth']) fs.copyFileSync(path.join(dir, 'work', 'straight', name), path.join(folder, name));
    const whole = fs.readFileSync(path.join(folder, 'iter_4.pth'));
    // A save killed half-way (or a disk that filled up): the zip's central directory is gone.
    fs.writeFileSync(path.join(folder, 'latest.pth'), whole.subarray(0, whole.length >> 1));
    const latest = path.join(folder, 'latest.pth');
    const before = tf.memory().numTensors;
    let error: unknown;
    try {
      await train({ kernel, config, workDir, resumeFrom: latest });
    } catch (caught) {
      error = caught;
    }
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
    expect((error as Error).message).to.match(new RegExp(`^--resume-from: ${escapeRegExp(latest)}: not a readable zip archive \\(.+\\); the newest intact checkpoint there is ${escapeRegExp(path.join(folder, 'iter_4.pth'))}: resume from it with --resume-from ${escapeRegExp(path.join(folder, 'iter_4.pth'))}$`));
  });

  it('max_keep_ckpts rotates .pth files, and a resume rebuilds the rotation from the .pth files on disk', async () => {
    const first = await setUp('rotation', { runner: { max_iters: 3 }, evaluation: { interval: 100, metric: 'mDice' }, checkpoint_config: { interval: 1, format: 'pth', max_keep_ckpts: 2 } });
    await train({ kernel: first.kernel, config: first.config, workDir: first.workDir });
    expect(checkpointFiles(first.workDir)).to.deep.equal(['iter_2.pth', 'iter_3.pth', 'latest.pth']);
    const second = await setUp('rotation-resumed', { runner: { max_iters: 4 }, evaluation: { interval: 100, metric: 'mDice' }, checkpoint_config: { interval: 1, format: 'pth', max_keep_ckpts: 2 } });
    const before = tf.memory().numTensors;
    await train({ kernel: second.kernel, config: second.config, workDir: first.workDir, resumeFrom: path.join(first.workDir, 'iter_3.pth') });
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
    // iter_2.pth came from before the resume: still counted, so it is the one rotated out.
    expect(checkpointFiles(first.workDir)).to.deep.equal(['iter_3.pth', 'iter_4.pth', 'latest.pth']);
  });

  it('a .pth without segkit resume state (a PyTorch / MMSegmentation checkpoint) is resumed from weights only, with a notice', async () => {
    const { config, kernel, lines, workDir } = await setUp('weights-only', { checkpoint_config: { interval: 4, format: 'pth' } });
    const straight = await readCheckpointFile(path.join(dir, 'work', 'straight', 'iter_2.pth'));
    const plain = path.join(dir, 'plain.pth');
    writeTorchCheckpoint(plain, straight.tensors, { meta: { CLASSES: ['background', 'vessel'] } });
    const before = tf.memory().numTensors;
    await train({ kernel, config, workDir, resumeFrom: plain });
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
    expect(lines).to.include(
      `warning: ${plain}: only checkpoints segkit's runner saved (.safetensors, or .pth with checkpoint_config.format 'pth') carry the optimizer, iteration and data order; loading its weights and starting at iteration 0`,
    );
    expect(lines.some((line) => line.startsWith('resumed from'))).to.equal(false);
    // All four iterations ran, starting from iteration 0.
    const saved = await readCheckpointFile(path.join(workDir, 'iter_4.pth'));
    expect(saved.meta!.iter).to.equal(4);
  });
});

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
