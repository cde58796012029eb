import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { expect } from 'chai';
import { tempTree } from '../src/testing';
import { assertSingleTfjs, loadedCopies } from '../src/plugin-system/tfjs-copies';

const realTfjsCore = path.dirname(require.resolve('@tensorflow/tfjs-core/package.json'));
const segkitBin = path.resolve(__dirname, '..', '..', 'bin', 'segkit.js');

/** A stand-in for a module-cache entry (the check reads only `filename` and `children`). */
function cached(filename: string, children: string[] = []): NodeJS.Module {
  return { filename, children: children.map((child) => ({ filename: child })) } as unknown as NodeJS.Module;
}

describe('one TensorFlow.js copy per process', () => {
  it('finds each copy in the module cache with its version and the package that loaded it', () => {
    const root = fs.realpathSync(
      tempTree({
        'app/package.json': JSON.stringify({ name: 'my-app' }),
        'app/node_modules/@tensorflow/tfjs-core/package.json': JSON.stringify({ name: '@tensorflow/tfjs-core', version: '4.22.0' }),
        'app/node_modules/old-plugin/package.json': JSON.stringify({ name: 'old-plugin', version: '1.0.0' }),
        'app/node_modules/old-plugin/node_modules/@tensorflow/tfjs-core/package.json': JSON.stringify({ name: '@tensorflow/tfjs-core', version: '3.21.0' }),
      }),
    );
    const app = path.join(root, 'app');
    const first = path.join(app, 'node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js');
    const second = path.join(app, 'node_modules/old-plugin/node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js');
    const cache = {
      [path.join(app, 'main.js')]: cached(path.join(app, 'main.js'), [first]),
      [first]: cached(first),
      [path.join(app, 'node_modules/old-plugin/index.js')]: cached(path.join(app, 'node_modules/old-plugin/index.js'), [second]),
      [second]: cached(second),
    };
    expect(loadedCopies('@tensorflow/tfjs-core', cache)).to.deep.equal([
      { dir: path.join(app, 'node_modules/@tensorflow/tfjs-core'), version: '4.22.0', loadedBy: 'my-app' },
      { dir: path.join(app, 'node_modules/old-plugin/node_modules/@tensorflow/tfjs-core'), version: '3.21.0', loadedBy: 'old-plugin' },
    ]);
    expect(loadedCopies('@tensorflow/tfjs-backend-cpu', cache)).to.deep.equal([]);
    expect(() => assertSingleTfjs(cache)).to.throw(
      `two copies of @tensorflow/tfjs-core are loaded: 4.22.0 at ${path.join(app, 'node_modules/@tensorflow/tfjs-core')} (loaded by my-app) and ` +
        `3.21.0 at ${path.join(app, 'node_modules/old-plugin/node_modules/@tensorflow/tfjs-core')} (loaded by old-plugin)`,
    );
    // one copy, many files of it: fine
    const one = { [first]: cached(first), [first.replace('tf-core.node.js', 'index.js')]: cached(first.replace('tf-core.node.js', 'index.js')) };
    expect(() => assertSingleTfjs(one)).not.to.throw();
  });

  it('this process has exactly one copy of each (the repo installs tfjs once, as the packages declare it: peer)', () => {
    expect(loadedCopies('@tensorflow/tfjs-core').map((copy) => copy.dir)).to.deep.equal([fs.realpathSync(realTfjsCore)]);
    expect(() => assertSingleTfjs()).not.to.throw();
  });

  it('`segkit list` with a plugin that loads a second, real tfjs-core copy prints one line naming both versions and folders', function () {
    this.timeout(120000);
    // A real second copy (the CommonJS bundle tfjs-core's "main" loads), versioned differently, inside a
    // plugin's own node_modules: what npm makes when a plugin pins another tfjs-core than the user's.
    const manifest = JSON.parse(fs.readFileSync(path.join(realTfjsCore, 'package.json'), 'utf8')) as { main: string; version: string };
    const root = fs.realpathSync(
      tempTree({
        'project/node_modules/old-plugin/package.json': JSON.stringify({ name: 'old-plugin', version: '1.0.0', main: 'index.js' }),
        'project/node_modules/old-plugin/index.js': "const tf = require('@tensorflow/tfjs-core');\nexports.plugin = { name: 'old-plugin', version: '1.0.0', module: null, tf };\n",
        'project/node_modules/old-plugin/node_modules/@tensorflow/tfjs-core/package.json': JSON.stringify({ ...manifest, version: '4.21.0' }),
      }),
    );
    const copy = path.join(root, 'project/node_modules/old-plugin/node_modules/@tensorflow/tfjs-core');
    fs.mkdirSync(path.join(copy, path.dirname(manifest.main)), { recursive: true });
    fs.copyFileSync(path.join(realTfjsCore, manifest.main), path.join(copy, manifest.main));
    // the bundle's own dependencies, shared with the real copy
    for (const dependency of ['seedrandom', 'node-fetch']) {
      const target = path.dirname(require.resolve(`${dependency}/package.json`, { paths: [realTfjsCore] }));
      fs.symlinkSync(target, path.join(copy, '..', '..', dependency), 'dir');
    }
    const result = spawnSync(process.execPath, [segkitBin, 'list', '--plugins', 'old-plugin'], { cwd: path.join(root, 'project'), encoding: 'utf8' });
    const lines = result.stderr.trim().split('\n');
    expect(result.status, result.stderr).to.equal(1);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.equal(
      `segkit: two copies of @tensorflow/tfjs-core are loaded: ${manifest.version} at ${fs.realpathSync(realTfjsCore)} (loaded by @segkit/core) ` +
        `and 4.21.0 at ${copy} (loaded by old-plugin). segkit and its plugins must share one copy: install a single version ` +
        '(every @segkit package declares it as a peer dependency; `npm ls @tensorflow/tfjs-core` shows which package brings the other).',
    );
  });
});
