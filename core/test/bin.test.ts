import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { expect } from 'chai';
import { tempTree } from '../src/testing';

describe('bin/segkit.js', () => {
  it('before the first build it prints one line saying to run `npm run build` (no MODULE_NOT_FOUND stack)', () => {
    // core's bin beside no dist/: a source checkout where the build has not run
    const root = tempTree({ 'core/bin/segkit.js': fs.readFileSync(path.resolve(__dirname, '..', '..', 'bin', 'segkit.js'), 'utf8') });
    const result = spawnSync(process.execPath, [path.join(root, 'core/bin/segkit.js'), '--version'], { cwd: root, encoding: 'utf8' });
    expect(result.status).to.equal(1);
    expect(result.stdout).to.equal('');
    expect(result.stderr).to.equal(
      `segkit: @segkit/core is not built (${path.join('core', 'dist', 'src', 'cli', 'main.js')} is missing): run \`npm run build\` at the repository root\n`,
    );
  });
});
