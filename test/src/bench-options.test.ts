import * as path from 'path';
import { spawnSync } from 'child_process';
import { expect } from 'chai';

const REPO = path.resolve(__dirname, '..', '..');

describe('bench/backend-native.js options', function () {
  this.timeout(60000);
  for (const [arg, shown] of [
    ['--rounds=0', '0'],
    ['--rounds=two', 'two'],
    ['--rounds', 'no value'],
  ]) {
    it(`${arg}: one clear error line and exit code 2, before any timing`, () => {
      const run = spawnSync(process.execPath, [path.join(REPO, 'bench', 'backend-native.js'), arg, '--no-cpu', '--no-torch'], { encoding: 'utf8', cwd: REPO });
      expect(run.status).to.equal(2);
      expect(run.stderr.trim()).to.equal(`bench/backend-native.js: --rounds: expected an integer of at least 1, got ${shown}`);
      expect(run.stdout).to.equal('');
    });
  }
});
