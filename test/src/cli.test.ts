import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';

import { segkit } from './segkit-cli';

describe('segkit CLI', function () {
  this.timeout(120000);
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-cli-'));
    fs.writeFileSync(path.join(dir, 'base.json'), JSON.stringify({ model: { decode_head: { num_classes: 19, sampler: { type: 'OHEMPixelSampler', min_kept: 100000 } } } }));
    fs.writeFileSync(path.join(dir, 'cfg.json'), JSON.stringify({ _base_: './base.json', model: { decode_head: { num_classes: 2 } } }));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('segkit list prints registries with plugin@version', () => {
    const { code, stdout } = segkit(['list']);
    expect(code).to.equal(0);
    expect(stdout).to.match(/^backends \(\d+\)$/m);
    expect(stdout).to.match(/^ {2}cpu +@segkit\/core@\d+\.\d+\.\d+/m);
    const example = (require('@segkit/example-custom-loss/package.json') as { version: string }).version;
    expect(stdout).to.match(new RegExp(`^ {2}MyLoss +@segkit/example-custom-loss@${example.replace(/\./g, '\\.')}`, 'm'));
  });

  it('segkit --version prints core, the backend and every installed plugin with its version', () => {
    const { code, stdout } = segkit(['--version']);
    expect(code).to.equal(0);
    const core = (require('@segkit/core/package.json') as { version: string }).version;
    expect(stdout).to.match(new RegExp(`^@segkit/core ${core.replace(/\./g, '\\.')} \\(node v\\d+`));
    expect(stdout).to.match(/^backend: native \[ISA (avx512|avx2-fma|portable)[^\]]*; \d+ thread\(s\)\]$/m);
    const dice = (require('@segkit/loss-dice/package.json') as { version: string }).version;
    expect(stdout).to.match(new RegExp(`^  @segkit/loss-dice +${dice.replace(/\./g, '\\.')}$`, 'm'));
  });

  it('segkit print-config merges bases and applies --cfg-options', () => {
    const { code, stdout } = segkit(['print-config', path.join(dir, 'cfg.json'), '--cfg-options', 'model.decode_head.sampler.min_kept=50000']);
    expect(code).to.equal(0);
    expect(JSON.parse(stdout)).to.deep.equal({ model: { decode_head: { num_classes: 2, sampler: { type: 'OHEMPixelSampler', min_kept: 50000 } } } });
  });

  it('bad input exits non-zero with one line and no stack trace', () => {
    const missing = segkit(['print-config', path.join(dir, 'nope.ts')]);
    expect(missing.code).to.equal(1);
    expect(missing.stderr.trim()).to.equal(`segkit: config: file not found: ${path.join(dir, 'nope.ts')}`);
    const badOverride = segkit(['print-config', path.join(dir, 'cfg.json'), '--cfg-options', 'model']);
    expect(badOverride.stderr.trim()).to.equal("segkit: --cfg-options: expected key=value, got 'model'");
    const unknown = segkit(['frobnicate']);
    expect(unknown.code).to.not.equal(0);
    expect(unknown.stderr).to.not.match(/\n\s+at /);
  });
});
