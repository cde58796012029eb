#!/usr/bin/env node
// Prints the system MPI's compile or link flags for binding.gyp, from its compiler wrapper:
// Open MPI's `mpicc --showme:compile|link`, MPICH's `mpicc -compile_info|-link_info` (whose first word,
// the compiler, is dropped). `MPICC` picks another wrapper. Exits non-zero when there is no MPI.
//   node scripts/mpi-flags.js compile|link|libraries
'use strict';
const { spawnSync } = require('node:child_process');

const mpicc = process.env.MPICC || 'mpicc';

function run(args) {
  const result = spawnSync(mpicc, args, { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** The wrapper's flags for one stage, as a list of words. */
function flags(stage) {
  const openMpi = run([`--showme:${stage}`]);
  if (openMpi !== undefined) return openMpi.split(/\s+/).filter(Boolean);
  const mpich = run([stage === 'compile' ? '-compile_info' : '-link_info']);
  if (mpich !== undefined) return mpich.split(/\s+/).filter(Boolean).slice(1).filter((word) => word !== '-c');
  return undefined;
}

const stage = process.argv[2];
if (!['compile', 'link', 'libraries'].includes(stage)) {
  console.error('usage: mpi-flags.js compile|link|libraries');
  process.exit(2);
}
const words = flags(stage === 'compile' ? 'compile' : 'link');
if (!words) {
  console.error(`${mpicc} not found or not an MPI compiler wrapper`);
  process.exit(1);
}
// gyp wants the libraries (-l, -L) in `libraries` and the other linker flags in `ldflags`.
const isLibrary = (word) => word.startsWith('-l') || word.startsWith('-L') || word.startsWith('-Wl,-rpath');
const selected = stage === 'compile' ? words : stage === 'libraries' ? words.filter(isLibrary) : words.filter((word) => !isLibrary(word));
console.log(selected.join(' '));
