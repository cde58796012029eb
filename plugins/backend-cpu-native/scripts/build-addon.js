#!/usr/bin/env node
// Install step: compiles the native addon with node-gyp from source (no download of binaries).
// A failure (no compiler, no Python, no Node headers) must not fail `npm install`/`npm ci`: it is
// reported in one line and the package still works, with backend 'auto' falling back to cpu.
// `--strict` (npm run rebuild-addon) makes failures fatal, for developers.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const strict = process.argv.includes('--strict');
const packageRoot = path.resolve(__dirname, '..');

if (process.env.SEGKIT_SKIP_NATIVE_BUILD) {
  console.log('@segkit/backend-cpu-native: SEGKIT_SKIP_NATIVE_BUILD is set, not building the addon');
  process.exit(0);
}

/** node-gyp's CLI: npm's own copy during npm scripts, else a locally installed one, else PATH. */
function nodeGypCommand() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && fs.existsSync(fromNpm)) return [process.execPath, fromNpm];
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js', { paths: [packageRoot, process.cwd()] })];
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

const [command, ...prefixArgs] = nodeGypCommand();
const args = [...prefixArgs, 'rebuild', '--release', ...nodedirArgs()];
const result = spawnSync(command, args, { cwd: packageRoot, stdio: strict ? 'inherit' : ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });

if (result.status === 0) {
  console.log('@segkit/backend-cpu-native: native addon built');
  process.exit(0);
}
const detail = result.error ? result.error.message : (result.stderr || '').trim().split('\n').filter((line) => /error/i.test(line)).slice(0, 1).join('') || `node-gyp exited with ${result.status}`;
console.warn(`@segkit/backend-cpu-native: native addon not built (${detail}); backend 'auto' will use cpu. Needs a C++17 compiler, Python 3 and make.`);
process.exit(strict ? 1 : 0);
