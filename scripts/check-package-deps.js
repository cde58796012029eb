#!/usr/bin/env node
// Checks every workspace package's manifest against what its built files use, so that a package
// installed on its own (outside this monorepo, where hoisting hides nothing) finds everything it loads:
// - each bare specifier required by dist/src/**/*.js or referenced by dist/src/**/*.d.ts is declared in
//   dependencies, peerDependencies or optionalDependencies (devDependencies do not reach a user);
// - TensorFlow.js packages are peer dependencies (one copy in a user's tree), never dependencies;
// - `files`, `engines.node`, and the sources the shipped source maps point at are in the package.
// `node scripts/check-package-deps.js` prints the problems (exit 1) or one line per package checked.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { builtinModules } = require('node:module');

const ROOT = path.resolve(__dirname, '..');
const BUILTINS = new Set(builtinModules);

/** The workspace package folders of the root package.json (`core`, `plugins/*`, ...). */
function workspaceDirs(root = ROOT) {
  const { workspaces = [] } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const dirs = [];
  for (const pattern of workspaces) {
    if (pattern.endsWith('/*')) {
      const parent = path.join(root, pattern.slice(0, -2));
      for (const entry of fs.readdirSync(parent).sort()) {
        if (fs.existsSync(path.join(parent, entry, 'package.json'))) dirs.push(path.join(parent, entry));
      }
    } else if (fs.existsSync(path.join(root, pattern, 'package.json'))) {
      dirs.push(path.join(root, pattern));
    }
  }
  return dirs;
}

function walk(dir, accept, out = []) {
  if (!fs.existsSync(dir)) return out;
  if (!fs.statSync(dir).isDirectory()) {
    if (accept(path.basename(dir))) out.push(dir);
    return out;
  }
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(file, accept, out);
    else if (accept(entry.name)) out.push(file);
  }
  return out;
}

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
function packageOf(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function isBareSpecifier(specifier) {
  return !specifier.startsWith('.') && !specifier.startsWith('/') && !specifier.startsWith('node:') && !BUILTINS.has(packageOf(specifier));
}

/**
 * Bare package names a file needs: a compiled file's literal `require(...)`s, a declaration file's type
 * references, a shipped TypeScript source's runtime imports (`import type` is erased when it runs).
 */
function importedPackages(file) {
  let text = fs.readFileSync(file, 'utf8');
  let patterns;
  if (file.endsWith('.d.ts')) {
    patterns = [/\bfrom\s+["']([^"']+)["']/g, /\bimport\(\s*["']([^"']+)["']\s*\)/g, /\bimport\s+["']([^"']+)["']/g, /<reference\s+types=["']([^"']+)["']/g];
  } else if (file.endsWith('.ts')) {
    text = text.replace(/^\s*(import|export)\s+type\b[^;]*;/gm, '');
    patterns = [/\bfrom\s+["']([^"']+)["']/g, /\bimport\s+["']([^"']+)["']/g, /\brequire\(\s*["']([^"']+)["']\s*\)/g];
  } else {
    patterns = [/\brequire\(\s*["']([^"']+)["']\s*\)/g];
  }
  const names = new Set();
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) if (isBareSpecifier(match[1])) names.add(packageOf(match[1]));
  }
  return names;
}

/** Problems of one package folder (empty when it installs cleanly on its own). */
function checkPackage(dir, root = ROOT) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const where = `${manifest.name} (${path.relative(root, dir).split(path.sep).join('/') || '.'}/package.json)`;
  const problems = [];
  const declared = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
  ]);
  const distSrc = path.join(dir, 'dist', 'src');
  if (manifest.main && !fs.existsSync(path.join(dir, manifest.main))) problems.push(`${where}: ${manifest.main} is missing (run \`npm run build\` first)`);
  // What runs: the compiled dist/src, or — for a package without a build (configs run through jiti) — its shipped .ts files.
  const scanned = fs.existsSync(distSrc)
    ? walk(distSrc, (name) => name.endsWith('.js') || name.endsWith('.d.ts'))
    : (manifest.files ?? []).flatMap((entry) => walk(path.join(dir, entry), (name) => name.endsWith('.ts') || name.endsWith('.js')));
  const users = new Map();
  for (const file of scanned) {
    for (const name of importedPackages(file)) {
      if (name === manifest.name || (name === '@types/node' && file.endsWith('.d.ts'))) continue;
      if (!users.has(name)) users.set(name, path.relative(dir, file));
    }
  }
  for (const [name, file] of [...users].sort()) {
    if (!declared.has(name)) problems.push(`${where}: ${file} loads '${name}', which is not in dependencies, peerDependencies or optionalDependencies`);
  }
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    if (name.startsWith('@tensorflow/')) problems.push(`${where}: '${name}' must be a peerDependency (one copy in a user's tree), not a dependency`);
  }
  if (!Array.isArray(manifest.files) || manifest.files.length === 0) problems.push(`${where}: no "files" list (what the tarball ships)`);
  if (!manifest.engines?.node) problems.push(`${where}: no "engines": { "node": ... }`);
  // Source maps point at ../../src/*.ts: those must ship too, or stack traces and "go to definition" lead nowhere.
  const files = manifest.files ?? [];
  const mapSources = new Set();
  for (const map of walk(distSrc, (name) => name.endsWith('.map'))) {
    const { sources = [], sourcesContent } = JSON.parse(fs.readFileSync(map, 'utf8'));
    if (sourcesContent && sourcesContent.every((content) => typeof content === 'string')) continue;
    for (const source of sources) mapSources.add(path.relative(dir, path.resolve(path.dirname(map), source)).split(path.sep).join('/'));
  }
  for (const source of [...mapSources].sort()) {
    const shipped = files.some((entry) => source === entry || source.startsWith(`${entry.replace(/\/$/, '')}/`));
    if (!shipped) {
      problems.push(`${where}: source maps point at ${source}, which "files" does not ship`);
      break;
    }
  }
  return problems;
}

function checkAll(root = ROOT) {
  const dirs = workspaceDirs(root);
  return { checked: dirs.map((dir) => path.relative(root, dir)), problems: dirs.flatMap((dir) => checkPackage(dir, root)) };
}

module.exports = { checkAll, checkPackage, workspaceDirs, importedPackages };

if (require.main === module) {
  const { checked, problems } = checkAll();
  if (problems.length) {
    for (const problem of problems) console.error(problem);
    console.error(`${problems.length} problem(s) in ${checked.length} packages`);
    process.exit(1);
  }
  console.log(`${checked.length} packages: every bare import declared, TensorFlow.js as peer, files, engines and source-map sources in place`);
}
