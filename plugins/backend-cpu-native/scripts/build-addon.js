#!/usr/bin/env node
// The native addon's build steps (nothing is ever downloaded):
//   (install)        `npm install`: when the tarball's prebuilt binary for this platform loads, there is nothing
//                    to compile; otherwise compile from source with node-gyp. A failure (no compiler, no Python, no
//                    Node headers) must not fail `npm install`/`npm ci`: it is reported in one line and the package
//                    still works, with backend 'auto' falling back to cpu.
//   --strict         `npm run rebuild-addon`: compile from source, failures fatal (for developers).
//   --prebuild       `prepack`: compile (incrementally when already configured), then copy the binary to
//                    prebuilds/<platform>-<arch>/ so that the tarball carries it.
//   --clean-prebuild `postpack`: remove prebuilds/ again, so a checkout keeps loading its own fresh source build.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { PACKAGE_ROOT, prebuildPath, sourceBuildPaths } = require('./addon-location');

const NAME = '@segkit/backend-cpu-native';
const mode = ['--prebuild', '--clean-prebuild', '--strict'].find((flag) => process.argv.includes(flag)) ?? 'install';
const shown = (file) => path.relative(PACKAGE_ROOT, file);

/** node-gyp's CLI: npm's own copy during npm scripts, else a locally installed one, else PATH. */
function nodeGypCommand() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && fs.existsSync(fromNpm)) return [process.execPath, fromNpm];
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js', { paths: [PACKAGE_ROOT, process.cwd()] })];
  } catch {
    return ['node-gyp'];
  }
}

/** Use the running Node's own headers when they are installed (no header download needed). */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

/** Runs node-gyp; `incremental` reuses a configured build/ (make recompiles only what changed). */
function compile({ strict, incremental, quietStdout = false }) {
  const configured = fs.existsSync(path.join(PACKAGE_ROOT, 'build', 'config.gypi')) && fs.existsSync(path.join(PACKAGE_ROOT, 'build', 'Makefile'));
  const [command, ...prefixArgs] = nodeGypCommand();
  const args = [...prefixArgs, incremental && configured ? 'build' : 'rebuild', '--release', ...nodedirArgs()];
  // At pack time compiler output goes to stderr: `npm pack --json` prints its report on stdout.
  const stdio = quietStdout ? ['ignore', 2, 2] : strict ? 'inherit' : ['ignore', 'ignore', 'pipe'];
  return spawnSync(command, args, { cwd: PACKAGE_ROOT, stdio, encoding: 'utf8' });
}

/** Requires the binary; returns null when it loads, else the first line of the error. */
function loadError(file) {
  try {
    require(file);
    return null;
  } catch (error) {
    // dlopen's message starts with the file's path, which the caller shows already
    return String(error instanceof Error ? error.message : error).split('\n')[0].replace(`${file}: `, '');
  }
}

if (mode === '--clean-prebuild') {
  fs.rmSync(path.join(PACKAGE_ROOT, 'prebuilds'), { recursive: true, force: true });
  process.exit(0);
}

if (mode === '--prebuild') {
  const result = compile({ strict: true, incremental: true, quietStdout: true });
  if (result.status !== 0) {
    console.error(`${NAME}: prepack: node-gyp failed (${result.error ? result.error.message : `exit ${result.status}`}); the package needs its prebuilt binary`);
    process.exit(1);
  }
  const built = sourceBuildPaths()[0];
  const target = prebuildPath();
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(built, target);
  const error = loadError(target);
  if (error) {
    console.error(`${NAME}: prepack: the prebuilt ${shown(target)} does not load (${error})`);
    process.exit(1);
  }
  console.error(`${NAME}: prebuilt ${shown(target)} (${fs.statSync(target).size} bytes)`);
  process.exit(0);
}

if (process.env.SEGKIT_SKIP_NATIVE_BUILD) {
  console.log(`${NAME}: SEGKIT_SKIP_NATIVE_BUILD is set, not building the addon`);
  process.exit(0);
}

let prebuildNote = '';
if (mode === 'install') {
  const prebuilt = prebuildPath();
  if (fs.existsSync(prebuilt)) {
    const error = loadError(prebuilt);
    if (error === null) {
      console.log(`${NAME}: using the prebuilt addon ${shown(prebuilt)}, nothing to compile`);
      process.exit(0);
    }
    prebuildNote = `the prebuilt ${shown(prebuilt)} does not load here (${error}); `;
  }
}

const result = compile({ strict: mode === '--strict', incremental: false });
if (result.status === 0) {
  console.log(`${NAME}: ${prebuildNote}native addon built from source`);
  process.exit(0);
}
const detail = result.error ? result.error.message : (result.stderr || '').trim().split('\n').filter((line) => /error/i.test(line)).slice(0, 1).join('') || `node-gyp exited with ${result.status}`;
console.warn(`${NAME}: ${prebuildNote}native addon not built (${detail}); backend 'auto' will use cpu. Needs a C++17 compiler, Python 3 and make.`);
process.exit(mode === '--strict' ? 1 : 0);
