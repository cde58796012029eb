#!/usr/bin/env node
// Install step: compiles the MPI binding with node-gyp from source, against the system MPI's flags
// (scripts/mpi-flags.js). Without MPI or a compiler `npm install` still succeeds: this prints one line,
// and single-process training is unaffected (only `--launcher mpi|slurm` needs the addon).
// `--strict` (npm run rebuild-addon) makes failures fatal, for developers.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const strict = process.argv.includes('--strict');
const packageRoot = path.resolve(__dirname, '..');
const name = '@segkit/dist-mpi';

if (process.env.SEGKIT_SKIP_NATIVE_BUILD) {
  console.log(`${name}: SEGKIT_SKIP_NATIVE_BUILD is set, not building the MPI binding`);
  process.exit(0);
}

const probe = spawnSync(process.execPath, [path.join(__dirname, 'mpi-flags.js'), 'compile'], { encoding: 'utf8' });
if (probe.status !== 0) {
  console.warn(`${name}: no MPI found (mpicc missing), MPI binding not built; single-process training is unaffected. For --launcher mpi install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev) and run \`npm rebuild ${name}\`.`);
  process.exit(strict ? 1 : 0);
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
  console.log(`${name}: MPI binding built`);
  process.exit(0);
}
const detail = result.error ? result.error.message : (result.stderr || '').trim().split('\n').filter((line) => /error/i.test(line)).slice(0, 1).join('') || `node-gyp exited with ${result.status}`;
console.warn(`${name}: MPI binding not built (${detail}); single-process training is unaffected. Needs MPI's mpicc, a C++17 compiler, Python 3 and make.`);
process.exit(strict ? 1 : 0);
