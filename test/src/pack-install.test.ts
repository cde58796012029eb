import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { expect } from 'chai';

// ──────────────────────────────────────────────────────────────────────────────────────────────────────
// Set to true when @segkit/configs is a workspace (the `configs-typing` branch merged): the README's
// config then runs as written, its `_base_` coming from the installed @segkit/configs package. Until
// then the test drops @segkit/configs from the install list and points the same `_base_` entries at a
// copy of the repository's configs/_base_ in the project (what a user had to do before the package).
const CONFIGS_PACKAGE = true;
// ──────────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * The README's "Install in your own project", as a user does it: every workspace packed with `npm pack`,
 * a new project in a temporary folder outside the repository, the README's install list installed from
 * those tarballs, the README's config and the plugin file from its "Writing a plugin" section written
 * there verbatim, and the README's commands run. The whole install and every command run on a PATH
 * that holds node, npm, npx and sh only (and CC/CXX=/bin/false): @segkit/backend-cpu-native must load
 * its prebuilt binary, with no compiler. Nothing is fetched: npm runs with --offline, third-party
 * packages come from npm's cache (filled by the repository's `npm ci`) at the versions of the
 * repository's package-lock.json (see `pinnedLockfile`).
 */

const REPO = path.resolve(__dirname, '..', '..');
const README = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
const TRAIN_OVERRIDES = ['runner.max_iters=20', 'log_config.interval=5', 'checkpoint_config.interval=20', 'evaluation.interval=20'];

/** The text of README section `heading` (up to the next heading of the same level). */
function readmeSection(heading: string): string {
  const start = README.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README.md has no section '${heading}'`);
  const level = heading.split(' ')[0]!;
  const next = README.slice(start + heading.length + 2).search(new RegExp(`\\n${level} `));
  return README.slice(start, next < 0 ? undefined : start + heading.length + 2 + next);
}

/** The fenced code blocks of `section` with the given language. */
function codeBlocks(section: string, language: string): string[] {
  return [...section.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)\\n```', 'g'))].map((match) => `${match[1]}\n`);
}

interface InstallSteps {
  projectName: string;
  packages: string[];
  commands: string[][];
  configName: string;
  config: string;
}

/** The install section's shell lines and config; a README that no longer has this shape fails here, by name. */
function readmeInstallSteps(): InstallSteps {
  const section = readmeSection('## Install in your own project');
  const [shell] = codeBlocks(section, 'sh');
  const [config] = codeBlocks(section, 'ts');
  if (!shell || !config) throw new Error("README 'Install in your own project': expected a ```sh block and a ```ts block");
  const lines = shell.trim().split('\n');
  const mkdir = /^mkdir (\S+) && cd \1 && npm init -y$/.exec(lines[0] ?? '');
  const install = lines.find((line) => line.startsWith('npm install '));
  const configName = /^\/\/ (\S+\.ts)\n/.exec(config)?.[1];
  if (!mkdir || !install || !configName) throw new Error("README 'Install in your own project': expected `mkdir X && cd X && npm init -y`, an `npm install ...` line and a config starting with `// NAME.ts`");
  return {
    projectName: mkdir[1]!,
    packages: install.split(/\s+/).slice(2),
    commands: lines.filter((line) => line.startsWith('npx segkit')).map((line) => line.split(/\s+/).slice(1)),
    configName,
    config,
  };
}

/** A PATH of symlinks to node, npm, npx and sh only: a machine without a C/C++ compiler, make or Python. */
function noCompilerBin(root: string): string {
  const bin = path.join(root, 'bin');
  fs.mkdirSync(bin);
  // npm as this machine runs it (the `npm` on PATH is a link to npm's bin/npm-cli.js)
  const onPath = (process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir, 'npm')).find((file) => fs.existsSync(file));
  if (!onPath) throw new Error('npm is not on PATH');
  const npmCli = fs.realpathSync(onPath);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync(npmCli, path.join(bin, 'npm'));
  fs.symlinkSync(path.join(path.dirname(npmCli), 'npx-cli.js'), path.join(bin, 'npx'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  for (const tool of ['cc', 'gcc', 'g++', 'c++', 'make', 'python3']) expect(fs.existsSync(path.join(bin, tool))).to.equal(false);
  return bin;
}

/** The environment of the user's shell: no npm_* variables of the `npm test` running this (they name this repo). */
function userEnv(bin: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { HOME: os.homedir(), PATH: bin, CC: '/bin/false', CXX: '/bin/false', LANG: 'C.UTF-8', TMPDIR: os.tmpdir() };
  // the same npm cache and configuration files as the `npm ci` that filled the cache
  for (const key of ['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig']) if (process.env[key]) env[key] = process.env[key];
  return env;
}

/**
 * A package-lock.json holding the repository lock's runtime third-party packages (not its workspaces, not
 * dev tools). npm resolves the tarballs' dependencies against it, so it installs the versions this repo
 * was tested with, all in npm's cache — npm 11 resolves new dependencies from full packuments, which
 * `npm ci` (corgi packuments) does not cache, so without it an --offline install cannot resolve anything.
 * Packages nothing asks for are pruned by npm as usual.
 */
function pinnedLockfile(name: string): string {
  const lock = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const packages: Record<string, Record<string, unknown>> = { '': { name } };
  for (const [location, entry] of Object.entries(lock.packages)) {
    if (!location.startsWith('node_modules/') || location.startsWith('node_modules/@segkit/') || entry.link || entry.dev) continue;
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...rest } = entry;
    packages[location] = rest;
  }
  return JSON.stringify({ name, lockfileVersion: 3, requires: true, packages }, null, 2);
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Run {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, seconds: (Date.now() - started) / 1000 };
}

function expectSuccess(result: Run, what: string): void {
  if (result.status !== 0) expect.fail(`${what} exited with ${result.status}\n--- stdout\n${result.stdout.slice(-4000)}\n--- stderr\n${result.stderr.slice(-4000)}`);
}

function log(line = ''): void {
  console.log(`      ${line}`);
}

interface PackedFile {
  name: string;
  version: string;
  filename: string;
  size: number;
}

describe("the README's install path: packed tarballs in a fresh project outside the repository", function () {
  this.timeout(600000);
  const steps = readmeInstallSteps();
  let root: string;
  let project: string;
  let env: NodeJS.ProcessEnv;
  let packed: PackedFile[];
  let installLog: Run;
  const outputs = new Map<string, Run>();

  before(function () {
    root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-user-')));
    expect(path.relative(REPO, root).startsWith('..'), `${root} must be outside ${REPO}`).to.equal(true);
    const isWorkspace = fs.existsSync(path.join(REPO, 'configs', 'package.json'));
    if (isWorkspace !== CONFIGS_PACKAGE) throw new Error(`configs/package.json ${isWorkspace ? 'exists' : 'is missing'}: set CONFIGS_PACKAGE = ${isWorkspace} in test/src/pack-install.test.ts`);

    // 1. npm pack every workspace (backend-cpu-native's prepack builds its prebuilt binary)
    const tarballs = path.join(root, 'tarballs');
    fs.mkdirSync(tarballs);
    const pack = run('npm', ['pack', '--workspaces', '--json', '--pack-destination', tarballs], REPO, process.env);
    expectSuccess(pack, 'npm pack --workspaces');
    packed = (JSON.parse(pack.stdout) as PackedFile[]).map(({ name, version, filename, size }) => ({ name, version, filename, size }));
    log(`npm pack --workspaces: ${packed.length} tarballs in ${pack.seconds.toFixed(1)} s`);
    for (const file of packed) log(`  ${file.filename.padEnd(44)} ${(file.size / 1024).toFixed(1).padStart(7)} kB`);

    // 2. the project, as the README's first line makes it
    const bin = noCompilerBin(root);
    env = userEnv(bin);
    project = path.join(root, steps.projectName);
    fs.mkdirSync(project);
    expectSuccess(run('npm', ['init', '-y'], project, env), 'npm init -y');
    const projectName = (JSON.parse(fs.readFileSync(path.join(project, 'package.json'), 'utf8')) as { name: string }).name;
    fs.writeFileSync(path.join(project, 'package-lock.json'), pinnedLockfile(projectName));

    // 3. npm install the README's list, each name as its tarball
    const wanted = CONFIGS_PACKAGE ? steps.packages : steps.packages.filter((name) => name !== '@segkit/configs');
    const files = wanted.map((name) => {
      const file = packed.find((entry) => entry.name === name);
      if (!file) throw new Error(`README installs ${name}, which no workspace packs`);
      return path.join(tarballs, file.filename);
    });
    installLog = run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--foreground-scripts', ...files], project, env);
    expectSuccess(installLog, 'npm install');
    log(`npm install --offline of ${files.length} tarballs (PATH without a compiler): ${installLog.seconds.toFixed(1)} s`);
    for (const line of installLog.stdout.split('\n').filter((l) => l.startsWith('@segkit/') || l.startsWith('added '))) log(`  ${line}`);

    // 4. the README's files, verbatim: the config, and the plugin of "Writing a plugin" as my-loss.ts
    let config = steps.config;
    if (!CONFIGS_PACKAGE) {
      fs.cpSync(path.join(REPO, 'configs', '_base_'), path.join(project, '_base_'), { recursive: true });
      config = config.replace(/'@segkit\/configs\/_base_\/([^']+)'/g, "'./_base_/$1.ts'");
    }
    fs.writeFileSync(path.join(project, steps.configName), config);
    const [pluginSource] = codeBlocks(readmeSection('## Writing a plugin'), 'ts');
    fs.writeFileSync(path.join(project, 'my-loss.ts'), pluginSource!);

    // 5. the README's commands, in order (training shortened)
    for (const command of steps.commands) {
      const args = command[1] === 'train' ? [...command, '--cfg-options', ...TRAIN_OVERRIDES] : command;
      const result = run('npx', ['--offline', ...args], project, env);
      outputs.set(command[1]!, result);
      log(`$ npx ${args.join(' ')}   (${result.seconds.toFixed(1)} s, exit ${result.status})`);
    }
  });

  after(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('installs one copy of tfjs-core and tfjs-backend-cpu (peer dependencies) and every package it needs', () => {
    const copies = (name: string) => walkManifests(path.join(project, 'node_modules')).filter((manifest) => manifest.name === name);
    expect(copies('@tensorflow/tfjs-core').map((m) => m.dir)).to.deep.equal([path.join(project, 'node_modules/@tensorflow/tfjs-core')]);
    expect(copies('@tensorflow/tfjs-backend-cpu').map((m) => m.dir)).to.deep.equal([path.join(project, 'node_modules/@tensorflow/tfjs-backend-cpu')]);
    const installed = fs.readdirSync(path.join(project, 'node_modules', '@segkit')).map((entry) => `@segkit/${entry}`);
    expect(installed.sort()).to.deep.equal(steps.packages.filter((name) => CONFIGS_PACKAGE || name !== '@segkit/configs').sort());
  });

  it("ships sources for every source map of the installed @segkit packages", () => {
    let maps = 0;
    for (const name of fs.readdirSync(path.join(project, 'node_modules', '@segkit'))) {
      const dir = path.join(project, 'node_modules', '@segkit', name);
      for (const map of walkFiles(dir, (file) => file.endsWith('.map'))) {
        const { sources } = JSON.parse(fs.readFileSync(map, 'utf8')) as { sources: string[] };
        for (const source of sources) expect(fs.existsSync(path.resolve(path.dirname(map), source)), `${path.relative(project, map)} → ${source}`).to.equal(true);
        maps += 1;
      }
    }
    expect(maps).to.be.greaterThan(100);
  });

  it('the native backend comes from the prebuilt binary: nothing compiled at install, and no compiler on PATH', () => {
    const native = path.join(project, 'node_modules', '@segkit', 'backend-cpu-native');
    expect(installLog.stdout).to.match(/@segkit\/backend-cpu-native: using the prebuilt addon prebuilds\/linux-x64\/segkit_native\.napi\.glibc\.node, nothing to compile/);
    expect(fs.existsSync(path.join(native, 'prebuilds', 'linux-x64', 'segkit_native.napi.glibc.node'))).to.equal(true);
    expect(fs.existsSync(path.join(native, 'build')), 'a source build exists: the install compiled').to.equal(false);
  });

  it('`segkit --version` names core, the native backend and every installed plugin with its version', () => {
    const result = outputs.get('--version')!;
    expectSuccess(result, 'segkit --version');
    for (const line of result.stdout.trim().split('\n')) log(`  ${line}`);
    const lines = result.stdout.trim().split('\n');
    const core = packed.find((entry) => entry.name === '@segkit/core')!;
    expect(lines[0]).to.match(new RegExp(`^@segkit/core ${core.version.replace(/\./g, '\\.')} \\(node v`));
    expect(lines[1]).to.equal('backend: native');
    const plugins = steps.packages.filter((name) => name !== '@segkit/core' && name !== '@segkit/configs');
    expect(lines[2]).to.equal(`plugins (${plugins.length}):`);
    for (const name of plugins) {
      const version = packed.find((entry) => entry.name === name)!.version;
      expect(lines.slice(3).map((line) => line.trim().split(/\s+/).join(' '))).to.include(`${name} ${version}`);
    }
  });

  it('`segkit list` shows the installed plugins\' types', () => {
    const result = outputs.get('list')!;
    expectSuccess(result, 'segkit list');
    const version = (name: string) => packed.find((entry) => entry.name === name)!.version;
    expect(result.stdout).to.match(new RegExp(`\\n  UNet +@segkit/backbone-unet@${version('@segkit/backbone-unet')}`));
    expect(result.stdout).to.match(new RegExp(`\\n  CrossEntropyLoss +@segkit/loss-cross-entropy@${version('@segkit/loss-cross-entropy')}`));
    expect(result.stdout).to.match(/\nbackends \(2\)\n {2}cpu +@segkit\/core@[^\n]*\n {2}native +@segkit\/backend-cpu-native@/);
  });

  it("trains the README's config with the README's plugin file on the native backend", () => {
    const synth = outputs.get('synth')!;
    expectSuccess(synth, 'segkit synth drive');
    expect(fs.readdirSync(path.join(project, 'data', 'synthetic_drive', 'images', 'training'))).to.have.length(20);
    const train = outputs.get('train')!;
    expectSuccess(train, 'segkit train');
    const text = train.stdout + train.stderr;
    const iterLines = text.split('\n').filter((line) => /^Iter \[\d+\/20\]/.test(line));
    log('training (segkit train, max_iters 20):');
    for (const line of text.split('\n').filter((l) => /^(Iter \[|segkit: backend|loaded |\| +(aAcc|\d)|Saving checkpoint)/.test(l) || /mDice/.test(l))) log(`  ${line}`);
    expect(text).to.match(/segkit: backend native/);
    expect(iterLines.map((line) => /^Iter \[(\d+)\/20\]/.exec(line)![1])).to.deep.equal(['5', '10', '15', '20']);
    for (const line of iterLines) {
      // the README's MyLoss ran: its loss_name is in every log line, with a finite value
      const value = /decode\.loss_my: ([-\d.e+]+)/.exec(line);
      expect(value, line).to.not.equal(null);
      expect(Number.isFinite(Number(value![1])) && Number(value![1]) > 0, line).to.equal(true);
      expect(Number(/ loss: ([-\d.e+]+)/.exec(line)![1])).to.be.greaterThan(0);
    }
    expect(fs.existsSync(path.join(project, 'work_dirs', 'my_unet', 'iter_20.safetensors'))).to.equal(true);
    expect(text).to.match(/mDice/);
  });
});

function walkFiles(dir: string, accept: (file: string) => boolean, out: string[] = []): string[] {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'node_modules') walkFiles(file, accept, out);
    else if (entry.isFile() && accept(file)) out.push(file);
  }
  return out;
}

/** Every package.json under a node_modules tree (nested node_modules included), with its folder. */
function walkManifests(nodeModules: string, out: { name: string; dir: string }[] = []): { name: string; dir: string }[] {
  if (!fs.existsSync(nodeModules)) return out;
  for (const entry of fs.readdirSync(nodeModules)) {
    if (entry.startsWith('.')) continue;
    const dirs = entry.startsWith('@') ? fs.readdirSync(path.join(nodeModules, entry)).map((sub) => path.join(nodeModules, entry, sub)) : [path.join(nodeModules, entry)];
    for (const dir of dirs) {
      const manifest = path.join(dir, 'package.json');
      if (fs.existsSync(manifest)) out.push({ name: (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name: string }).name, dir });
      walkManifests(path.join(dir, 'node_modules'), out);
    }
  }
  return out;
}
