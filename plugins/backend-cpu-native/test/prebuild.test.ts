import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAddon } from '../src/addon';

const packageRoot = path.resolve(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const location = require(path.join(packageRoot, 'scripts', 'addon-location.js')) as { prebuildPath(root?: string): string; sourceBuildPaths(root?: string): string[] };
const sourceBuild = location.sourceBuildPaths()[0]!;

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-prebuild-'));
}

/** A folder laid out like the installed package: scripts/ and, optionally, a prebuilt binary (real or broken). */
function packageCopy(prebuilt: 'real' | 'broken' | 'none'): { root: string; prebuilt: string } {
  const root = tempDir();
  fs.cpSync(path.join(packageRoot, 'scripts'), path.join(root, 'scripts'), { recursive: true });
  fs.copyFileSync(path.join(packageRoot, 'binding.gyp'), path.join(root, 'binding.gyp'));
  fs.cpSync(path.join(packageRoot, 'native'), path.join(root, 'native'), { recursive: true });
  const file = location.prebuildPath(root);
  if (prebuilt !== 'none') {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (prebuilt === 'real') fs.copyFileSync(sourceBuild, file);
    else fs.writeFileSync(file, 'not a shared library');
  }
  return { root, prebuilt: file };
}

/** The environment of a machine without a C/C++ compiler: PATH holds node and nothing else. */
function noCompilerEnv(): NodeJS.ProcessEnv {
  const bin = tempDir();
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: bin, CC: '/bin/false', CXX: '/bin/false' };
  delete env.npm_config_node_gyp;
  return env;
}

describe('native addon: prebuilt binary first, source build as fallback', () => {
  before(function () {
    if (!fs.existsSync(sourceBuild)) this.skip(); // the repo's `npm ci` builds it; without a compiler there is nothing to copy
  });

  it('the prebuilt path is prebuilds/<platform>-<arch>/segkit_native.napi[.libc].node, tried before build/Release', () => {
    const libc = process.platform === 'linux' ? (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime ? '.glibc' : '.musl' : '';
    expect(location.prebuildPath()).to.equal(path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, `segkit_native.napi${libc}.node`));
  });

  it('loads a prebuilt binary that loads, and the source build when the prebuilt one does not', () => {
    const good = packageCopy('real');
    const fromPrebuilt = loadAddon([good.prebuilt, sourceBuild]);
    expect(fromPrebuilt.file).to.equal(good.prebuilt);
    expect(fromPrebuilt.addon?.conv2d).to.be.a('function');
    const bad = packageCopy('broken');
    const fromSource = loadAddon([bad.prebuilt, sourceBuild]);
    expect(fromSource.file).to.equal(sourceBuild);
    expect(fromSource.addon?.conv2d).to.be.a('function');
  });

  it('when neither loads, one line names each candidate and why', () => {
    const bad = packageCopy('broken');
    const brokenBuild = path.join(bad.root, 'build', 'Release', 'segkit_native.node');
    fs.mkdirSync(path.dirname(brokenBuild), { recursive: true });
    fs.writeFileSync(brokenBuild, 'not a shared library either');
    const { reason } = loadAddon([bad.prebuilt, brokenBuild]);
    expect(reason).to.be.a('string');
    expect(reason).to.not.include('\n');
    expect(reason).to.match(new RegExp(`^native addon failed to load \\(prebuilt ${escape(bad.prebuilt)}: (invalid ELF header|file too short); source build ${escape(brokenBuild)}: (invalid ELF header|file too short)\\); run \`npm rebuild @segkit/backend-cpu-native\``));
    const none = loadAddon([path.join(bad.root, 'nothing', 'here.node')]).reason;
    expect(none).to.match(/^native addon not built \(no prebuilt binary for \S+ in the package, no source build: no C\+\+ toolchain at install\?\)/);
  });

  it('the install script compiles nothing when the prebuilt binary loads (no compiler on PATH)', function () {
    this.timeout(60000);
    const { root } = packageCopy('real');
    const result = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-addon.js')], { cwd: root, env: noCompilerEnv(), encoding: 'utf8' });
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout.trim()).to.equal(`@segkit/backend-cpu-native: using the prebuilt addon ${path.relative(root, location.prebuildPath(root))}, nothing to compile`);
    expect(fs.existsSync(path.join(root, 'build'))).to.equal(false);
  });

  it('the install script says why when the prebuilt binary does not load and there is no compiler, and still succeeds', function () {
    this.timeout(120000);
    const { root } = packageCopy('broken');
    const result = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-addon.js')], { cwd: root, env: noCompilerEnv(), encoding: 'utf8' });
    expect(result.status).to.equal(0);
    const lines = result.stderr.trim().split('\n');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(
      /^@segkit\/backend-cpu-native: the prebuilt prebuilds\/\S+ does not load here \((invalid ELF header|file too short)\); native addon not built \(.+\); backend 'auto' will use cpu\. Needs a C\+\+17 compiler, Python 3 and make\.$/,
    );
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
