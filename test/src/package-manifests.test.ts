import * as path from 'path';
import { expect } from 'chai';
import { tempTree } from '@segkit/core/testing';

interface DependencyCheck {
  checkAll(root?: string): { checked: string[]; problems: string[] };
}
const { checkAll } = require(path.resolve(__dirname, '..', '..', 'scripts', 'check-package-deps.js')) as DependencyCheck;

// Each package must install on its own, outside this monorepo where hoisting hides an undeclared import.
describe('package manifests (scripts/check-package-deps.js)', () => {
  it('every workspace declares what its built files load, TensorFlow.js as peer, files, engines, and ships its source maps\' sources', () => {
    const { checked, problems } = checkAll();
    expect(checked).to.include.members(['core', 'plugins/backend-cpu-native', 'plugins/loss-dice']);
    expect(problems).to.deep.equal([]);
  });

  it('names each problem of a package that would not install cleanly', () => {
    const root = tempTree({
      'package.json': JSON.stringify({ name: 'root', private: true, workspaces: ['plugins/*'] }),
      'plugins/bad/package.json': JSON.stringify({ name: '@segkit/bad', version: '1.0.0', dependencies: { '@tensorflow/tfjs-core': '4.22.0' }, files: ['dist/src'] }),
      'plugins/bad/dist/src/index.js': 'const tf = require("@tensorflow/tfjs-core");\nconst z = require("zod");\nconst fs = require("node:fs");\nconst own = require("@segkit/bad/package.json");\n',
      'plugins/bad/dist/src/index.d.ts': 'import type { Observable } from "rxjs";\nexport declare const x: Observable<number>;\n',
      'plugins/bad/dist/src/index.js.map': JSON.stringify({ version: 3, file: 'index.js', sources: ['../../src/index.ts'], mappings: '' }),
    });
    const where = '@segkit/bad (plugins/bad/package.json)';
    expect(checkAll(root).problems).to.deep.equal([
      `${where}: ${path.join('dist', 'src', 'index.d.ts')} loads 'rxjs', which is not in dependencies, peerDependencies or optionalDependencies`,
      `${where}: ${path.join('dist', 'src', 'index.js')} loads 'zod', which is not in dependencies, peerDependencies or optionalDependencies`,
      `${where}: '@tensorflow/tfjs-core' must be a peerDependency (one copy in a user's tree), not a dependency`,
      `${where}: no "engines": { "node": ... }`,
      `${where}: source maps point at src/index.ts, which "files" does not ship`,
    ]);
  });
});
