import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { writeSafetensors } from '../src/checkpoint/safetensors';
import { readCheckpointForResume } from '../src/checkpoint/segkit-checkpoint';
import { SegkitError } from '../src/errors';

describe('resume from a damaged latest checkpoint', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-resume-'));
    for (const iter of [2, 4]) {
      writeSafetensors(path.join(dir, `iter_${iter}.safetensors`), new Map([['w', { dtype: 'float32', shape: [4], data: Float32Array.of(1, 2, 3, iter) }]]), { meta: JSON.stringify({ iter }) });
    }
    fs.copyFileSync(path.join(dir, 'iter_4.safetensors'), path.join(dir, 'latest.safetensors'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const messageOf = (file: string) => {
    try {
      readCheckpointForResume(file).dispose();
    } catch (error) {
      expect(error).to.be.instanceOf(SegkitError);
      return (error as Error).message;
    }
    throw new Error('expected an error');
  };

  it('names the newest intact iter_N (a kill while copying latest truncates it)', () => {
    const latest = path.join(dir, 'latest.safetensors');
    fs.truncateSync(latest, 40);
    expect(messageOf(latest)).to.match(new RegExp(`^--resume-from: ${latest}: not a valid safetensors checkpoint \\(.*\\); the newest intact checkpoint there is ${dir}/iter_4\\.safetensors: resume from it with --resume-from ${dir}/iter_4\\.safetensors$`));
    fs.truncateSync(path.join(dir, 'iter_4.safetensors'), 10);
    expect(messageOf(latest)).to.include(`the newest intact checkpoint there is ${dir}/iter_2.safetensors`);
    expect(messageOf(path.join(dir, 'iter_9.safetensors'))).to.equal(
      `--resume-from: checkpoint not found: ${dir}/iter_9.safetensors; the newest intact checkpoint there is ${dir}/iter_2.safetensors: resume from it with --resume-from ${dir}/iter_2.safetensors`,
    );
  });

  it('reads an intact checkpoint as usual', () => {
    const checkpoint = readCheckpointForResume(path.join(dir, 'latest.safetensors'));
    expect(checkpoint.meta.iter).to.equal(4);
    checkpoint.dispose();
  });
});
