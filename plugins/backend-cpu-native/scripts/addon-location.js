// Where the native addon is looked for, shared by the install script, the pack-time prebuild and the
// run-time loader (dist/src/addon.js) so that the three always agree.
//   1. prebuilds/<platform>-<arch>/segkit_native.napi[.<libc>].node — made by `npm pack` (prepack), shipped in
//      the tarball: an N-API binary, so one file serves every Node version >= the one it was built with;
//   2. build/Release/segkit_native.node — node-gyp's source build (at install, or `npm run rebuild-addon`);
//   3. build/Debug/segkit_native.node.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const PACKAGE_ROOT = path.resolve(__dirname, '..');
const ADDON_NAME = 'segkit_native';

let libc;

/** 'glibc' or 'musl' on Linux (binaries for one do not load on the other), undefined elsewhere. */
function linuxLibc() {
  if (process.platform !== 'linux') return undefined;
  if (libc === undefined) {
    // Fast path (as detect-libc): ldd names its C library; a process report (tens of ms) otherwise.
    let ldd = '';
    try {
      ldd = fs.readFileSync('/usr/bin/ldd', 'latin1');
    } catch {
      // no ldd: ask the report below
    }
    if (ldd.includes('GNU C Library') || ldd.includes('GLIBC')) libc = 'glibc';
    else if (ldd.includes('musl')) libc = 'musl';
    else libc = process.report?.getReport?.()?.header?.glibcVersionRuntime ? 'glibc' : 'musl';
  }
  return libc;
}

/** The prebuilt binary's path for this platform (whether or not it exists). */
function prebuildPath(root = PACKAGE_ROOT) {
  const libc = linuxLibc();
  return path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, `${ADDON_NAME}.napi${libc ? `.${libc}` : ''}.node`);
}

/** Source builds, release first. */
function sourceBuildPaths(root = PACKAGE_ROOT) {
  return [path.join(root, 'build', 'Release', `${ADDON_NAME}.node`), path.join(root, 'build', 'Debug', `${ADDON_NAME}.node`)];
}

/** Every candidate, in the order the loader tries them: the prebuilt binary first. */
function addonCandidates(root = PACKAGE_ROOT) {
  return [prebuildPath(root), ...sourceBuildPaths(root)];
}

module.exports = { PACKAGE_ROOT, ADDON_NAME, linuxLibc, prebuildPath, sourceBuildPaths, addonCandidates };
