import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { readSafetensors } from '@segkit/core';
import { repo, segkit } from './segkit-cli';

const demoConfig = path.join(repo, 'configs/demo/unet-s5-d16_tricks_64x64_synthetic-drive.ts');

/**
 * The demo config exactly as `npm run demo` trains it (all four tricks, two loader workers), through
 * `segkit train`, for 4 iterations: once straight through, once resumed from its iteration-2 checkpoint.
 */
describe('segkit train of the demo config: interrupted and resumed equals uninterrupted', function () {
  this.timeout(600000);
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-demo-resume-'));
    const { synthDrive } = require('@segkit/datasets') as { synthDrive: (o: object) => Promise<unknown> };
    await synthDrive({ out: path.join(dir, 'data'), count: 4, size: [128, 128], seed: 5 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function train(workDir: string, maxIters: number, resumeFrom?: string): void {
    const data = path.join(dir, 'data');
    const args = ['train', demoConfig, '--work-dir', path.join(dir, workDir), '--no-validate', '--cfg-options',
      `runner.max_iters=${maxIters}`, 'checkpoint_config.interval=2', 'log_config.interval=1',
      `data.train.dataset.data_root=${data}`, `data.val.data_root=${data}`, `data.test.data_root=${data}`];
    if (resumeFrom) args.push('--resume-from', path.join(dir, resumeFrom));
    const run = segkit(args, dir);
    expect(run.code, run.stderr).to.equal(0);
  }

  it('4 iterations vs resumed from that run\'s iteration-2 checkpoint: the same weights and logged losses for iterations 3 and 4', () => {
    // (A separate 2-iteration run would not do: the poly schedule's horizon is max_iters.)
    train('straight', 4);
    train('interrupted', 4, 'straight/iter_2.safetensors');

    const a = readSafetensors(path.join(dir, 'straight', 'iter_4.safetensors')).tensors;
    const b = readSafetensors(path.join(dir, 'interrupted', 'iter_4.safetensors')).tensors;
    expect([...b.keys()]).to.deep.equal([...a.keys()]);
    // 76 parameters, 24 BatchNorm layers × (running_mean, running_var, num_batches_tracked), 76 momentum buffers
    expect(a.size).to.equal(76 + 72 + 76);
    for (const [name, tensor] of a) {
      const other = b.get(name)!.data;
      for (let i = 0; i < tensor.data.length; i++) expect(other[i], `${name}[${i}]`).to.equal(tensor.data[i]);
    }

    // The JSON logs of the two runs agree on the losses of iterations 3 and 4.
    const losses = (workDir: string) => {
      const files = fs.readdirSync(path.join(dir, workDir)).filter((f) => f.endsWith('.log.json')).sort();
      const records = files.flatMap((f) => fs.readFileSync(path.join(dir, workDir, f), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, number | string>));
      return records.filter((r) => r.mode === 'train' && Number(r.iter) > 2).map((r) => [r.iter, r['decode.loss_ce'], r['decode.loss_dice'], r['aux.loss_ce'], r['aux.loss_dice']]);
    };
    const straight = losses('straight');
    expect(straight).to.have.length(2);
    expect(losses('interrupted')).to.deep.equal(straight);
  });
});
