// Reliability (issue 15): the real CLI in a child process, killed with SIGKILL mid-write, given a full or
// read-only checkpoint folder, failing before its training loop with worker threads running, and carrying
// a plugin hook whose plain-RxJS subscriber throws. What must hold: no checkpoint left unloadable, every
// failure a non-zero exit with one line naming the path, and no process left hanging.
import { spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { readCheckpoint } from '@segkit/core';
import { repo, tinyConfig } from './tiny-config';

const bin = path.join(repo, 'core', 'bin', 'segkit.js');
const TEMPORARY = /\.tmp-(\d+)$/;
const CHECKPOINT = /^(latest|iter_(\d+))\.safetensors$/;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawn to exit. */
  elapsed: number;
  /** Milliseconds from the first `segkit: ` line on stderr to exit (undefined if there was none). */
  afterErrorLine?: number;
}

interface Child {
  pid: number;
  kill(): void;
  done: Promise<Outcome>;
}

/** Starts `segkit <args>` as a user would; `timeoutMs` kills a hanging child (the outcome then has signal SIGKILL). */
function startSegkit(args: string[], options: { timeoutMs: number; uid?: number; gid?: number }): Child {
  const started = performance.now();
  const child = spawn(process.execPath, [bin, ...args], { cwd: repo, env: { ...process.env, SEGKIT_DEBUG: '' }, uid: options.uid, gid: options.gid });
  let stdout = '';
  let stderr = '';
  let errorLineAt: number | undefined;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (errorLineAt === undefined && /^segkit: /m.test(stderr)) errorLineAt = performance.now();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const done = new Promise<Outcome>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const now = performance.now();
      resolve({ code, signal, stdout, stderr, elapsed: now - started, afterErrorLine: errorLineAt === undefined ? undefined : now - errorLineAt });
    });
  });
  return { pid: child.pid!, kill: () => child.kill('SIGKILL'), done };
}

/**
 * Calls `then` once, as soon as the file names in `dir` satisfy `condition` (checked on every inotify
 * event, and every 2 ms as a fallback). Returns a function that stops watching.
 */
function whenFolder(dir: string, condition: (names: string[]) => boolean, then: () => void): () => void {
  let fired = false;
  const check = () => {
    if (fired || !condition(fs.readdirSync(dir))) return;
    fired = true;
    stop();
    then();
  };
  const watcher = fs.watch(dir, check);
  const poll = setInterval(check, 2);
  const stop = () => {
    watcher.close();
    clearInterval(poll);
  };
  return stop;
}

/** Every checkpoint in `dir` loads; `iter_N` holds iteration N and `latest` one of the saved iterations. Returns latest's iteration. */
function expectLoadableCheckpoints(dir: string): { latest: number | undefined; periodic: number[] } {
  const before = tf.memory().numTensors;
  const periodic: number[] = [];
  let latest: number | undefined;
  for (const name of fs.readdirSync(dir).filter((n) => CHECKPOINT.test(n) && fs.statSync(path.join(dir, n)).isFile())) {
    const checkpoint = readCheckpoint(path.join(dir, name));
    try {
      expect(checkpoint.weights.size, name).to.be.greaterThan(0);
      expect(checkpoint.optimizerState, name).to.not.equal(undefined);
      const iter = CHECKPOINT.exec(name)![2];
      if (iter === undefined) latest = checkpoint.meta.iter;
      else {
        expect(checkpoint.meta.iter, name).to.equal(Number(iter));
        periodic.push(Number(iter));
      }
    } finally {
      checkpoint.dispose();
    }
  }
  expect(tf.memory().numTensors).to.equal(before);
  return { latest, periodic: periodic.sort((a, b) => a - b) };
}

function temporaryFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => TEMPORARY.test(n));
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** stderr without the model's advisory warnings (binary segmentation, avg_non_ignore) and backend notes. */
function problems(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line !== '' && !/^warning: model\./.test(line) && !/^backend: /.test(line));
}

describe('reliability: kills, failing saves, pre-loop errors and throwing subscribers (real CLI)', function () {
  this.timeout(180000);
  let dir: string;
  const data = () => path.join(dir, 'data');

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-reliability-'));
    const { synthDrive } = require('@segkit/datasets') as { synthDrive: (o: object) => Promise<unknown> };
    await synthDrive({ out: data(), count: 4, size: [64, 64], seed: 3 });
    // Local plugins as users write them: TypeScript files next to the config, importing '@segkit/core'.
    fs.writeFileSync(
      path.join(dir, 'hooks.ts'),
      `import { Hook, definePlugin, z, type EventBus } from '@segkit/core';

class RawRxjsHook extends Hook {
  readonly name = 'RawRxjsHook';
  override observe(bus: EventBus) {
    // Plain RxJS, as the README allows: no try/catch, no bus.subscribe.
    return bus.on('iter:end').subscribe(() => {
      throw new Error('dashboard unreachable');
    });
  }
}

class ExplodingHook extends Hook {
  readonly name = 'ExplodingHook';
  constructor() {
    super();
    throw new Error('cannot open the dashboard socket');
  }
}

export const plugin = definePlugin({
  name: 'reliability-hooks',
  version: '0.0.1',
  components: {
    hooks: [
      { type: 'RawRxjsHook', schema: z.object({}), create: () => new RawRxjsHook() },
      { type: 'ExplodingHook', schema: z.object({}), create: () => new ExplodingHook() },
    ],
  },
});
`,
    );
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The tiny UNet config on the native backend (listed, as the config lives outside the repo), evaluation off. */
  function writeConfig(name: string, overrides: Record<string, unknown> = {}, edit: (config: any) => void = () => undefined): string {
    const config: any = tinyConfig(data(), { evaluation: null, plugins: ['@segkit/backend-cpu-native'], ...overrides });
    edit(config);
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(config));
    return file;
  }

  it('kill -9 during checkpoint writes: every latest / iter_N left loads, and the next run removes the stale temp file with a notice', async () => {
    // A 2.7M-parameter head on the 2×2 bottleneck: ~21 MB per checkpoint (a write takes tens of ms) for little compute.
    const config = writeConfig('kill', { runner: { max_iters: 10 }, checkpoint_config: { interval: 1, max_keep_ckpts: 2 }, log_config: { interval: 1, hooks: [{ type: 'TextLoggerHook', by_epoch: false }] } }, (c) => {
      c.model.backbone = { base_channels: 4, num_stages: 5, strides: [1, 1, 1, 1, 1], enc_num_convs: [1, 1, 1, 1, 1], dec_num_convs: [1, 1, 1, 1], downsamples: [true, true, true, true], enc_dilations: [1, 1, 1, 1, 1], dec_dilations: [1, 1, 1, 1] };
      c.model.decode_head = { in_channels: 64, in_index: 0, channels: 512, num_convs: 2, loss_decode: { type: 'CrossEntropyLoss', loss_weight: 1.0 } };
      c.model.auxiliary_head = { in_channels: 4, in_index: 4, channels: 4 };
    });
    const workDir = path.join(dir, 'kill-work');
    fs.mkdirSync(workDir);
    const latest = path.join(workDir, 'latest.safetensors');
    const killed: number[] = [];
    const leftBehind: string[] = [];

    /** One run, killed when `trigger` says; checks that everything it left loads and returns its temp files. */
    async function killedRun(resume: boolean, trigger: (child: Child) => () => void, mayFinish = false): Promise<{ outcome: Outcome; left: string[] }> {
      const child = startSegkit(['train', config, '--work-dir', workDir, ...(resume ? ['--resume-from', latest] : [])], { timeoutMs: 60000 });
      killed.push(child.pid);
      const stop = trigger(child);
      const outcome = await child.done;
      stop();
      // A kill at a random moment may come after a fast run ended by itself: then it must have ended cleanly.
      if (mayFinish && outcome.signal === null) expect(outcome.code, outcome.stderr).to.equal(0);
      else expect(outcome.signal, outcome.stderr).to.equal('SIGKILL');
      // Temp files of this run, or of an earlier one when this one was killed before it cleaned up.
      const left = temporaryFiles(workDir);
      expect(left.every((name) => killed.includes(Number(TEMPORARY.exec(name)![1]))), left.join(', ')).to.equal(true);
      leftBehind.push(...left.filter((name) => Number(TEMPORARY.exec(name)![1]) === child.pid));
      expectLoadableCheckpoints(workDir);
      return { outcome, left };
    }

    /** The notice of a run that got to its first hook: every stale temp file named, on one line. */
    function expectStaleNotice(stderr: string, stale: string[]): void {
      if (stale.length === 0) return;
      const notice = stderr.split('\n').find((line) => line.startsWith(`warning: removed ${stale.length} temporary file(s) left by an interrupted save: `));
      expect(notice, stderr).to.not.equal(undefined);
      for (const name of stale) expect(notice).to.contain(name);
    }

    // 1. Killed while `latest` is being rewritten: not its first write (iter_2 or later is saved), so an older latest exists.
    const first = await killedRun(false, (child) =>
      whenFolder(workDir, (names) => names.some((n) => /^iter_([2-9]|10)\.safetensors$/.test(n)) && names.some((n) => /^latest\.safetensors\.tmp-\d+$/.test(n)), () => child.kill()),
    );
    expect(fs.existsSync(latest), 'the first latest survives').to.equal(true);

    // 2. Resumed from that latest: the stale temp file goes with a notice; killed while a periodic iter_N is written.
    const second = await killedRun(true, (child) => whenFolder(workDir, (names) => names.some((n) => /^iter_\d+\.safetensors\.tmp-\d+$/.test(n)), () => child.kill()));
    expectStaleNotice(second.outcome.stderr, first.left);

    // 3. Resumed again and killed at a random moment (startup, a step or a write; maybe before it removed run 2's temp file).
    const delay = 2000 + Math.floor(Math.random() * 2500);
    await killedRun(
      true,
      (child) => {
        const timer = setTimeout(() => child.kill(), delay);
        return () => clearTimeout(timer);
      },
      true,
    );

    // The kills must have caught at least one write in the act, or this test tested nothing.
    expect(leftBehind.length, `temporary files left by the kills (random delay ${delay} ms)`).to.be.greaterThan(0);

    // 4. A run that is left alone finishes from the last intact latest, cleans up, and exits 0.
    const stale = temporaryFiles(workDir);
    const last = startSegkit(['train', config, '--work-dir', workDir, '--resume-from', latest], { timeoutMs: 90000 });
    const outcome = await last.done;
    expect(outcome.code, outcome.stderr).to.equal(0);
    expectStaleNotice(outcome.stderr, stale);
    expect(temporaryFiles(workDir)).to.deep.equal([]);
    const final = expectLoadableCheckpoints(workDir);
    expect(final.latest).to.equal(10);
    expect(final.periodic).to.deep.equal([9, 10]);
  });

  describe('a checkpoint save that fails: non-zero exit naming the path and the OS error, earlier checkpoints intact, no temp files', () => {
    let mounted: string | undefined;
    let readOnly: string | undefined;
    afterEach(() => {
      if (mounted) spawnSync('umount', [mounted]);
      if (readOnly) fs.chmodSync(readOnly, 0o755);
      mounted = readOnly = undefined;
    });

    it('a full disk (a 128 KiB tmpfs as the checkpoint out_dir; needs root and mount)', async function () {
      const outDir = path.join(dir, 'full-ckpt');
      fs.mkdirSync(outDir);
      const mount = process.getuid?.() === 0 ? spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=128k', 'tmpfs', outDir], { encoding: 'utf8' }) : undefined;
      if (!mount || mount.status !== 0) this.skip();
      mounted = outDir;
      // ~46 KB per checkpoint: iter_1 and latest fit, iter_2 does not.
      const config = writeConfig('full', { runner: { max_iters: 4 }, checkpoint_config: { interval: 1, out_dir: outDir } });
      const outcome = await startSegkit(['train', config, '--work-dir', path.join(dir, 'full-work')], { timeoutMs: 60000 }).done;
      expect(outcome.code, outcome.stderr).to.equal(1);
      const lines = problems(outcome.stderr);
      expect(lines[lines.length - 1]).to.match(new RegExp(`^segkit: cannot write ${escape(outDir)}/(iter_\\d+|latest)\\.safetensors: ENOSPC: no space left on device`));
      expect(temporaryFiles(outDir)).to.deep.equal([]);
      const left = expectLoadableCheckpoints(outDir);
      expect(left.periodic).to.include(1);
      expect(left.latest).to.equal(left.periodic[left.periodic.length - 1]);
    });

    it('a read-only checkpoint folder (chmod 0555; as root, for whom modes do not apply, a read-only bind mount)', async function () {
      const workDir = path.join(dir, 'readonly-work');
      const outDir = path.join(workDir, 'ckpt');
      fs.mkdirSync(outDir, { recursive: true });
      const config = writeConfig('readonly', { runner: { max_iters: 2 }, checkpoint_config: { interval: 1, out_dir: outDir } });
      const firstRun = await startSegkit(['train', config, '--work-dir', workDir], { timeoutMs: 60000 }).done;
      expect(firstRun.code, firstRun.stderr).to.equal(0);
      const saved = fs.readdirSync(outDir).sort();
      expect(saved).to.deep.equal(['iter_1.safetensors', 'iter_2.safetensors', 'latest.safetensors']);
      const hashes = saved.map((name) => sha256(path.join(outDir, name)));
      if (process.getuid?.() === 0) {
        const bind = spawnSync('mount', ['--bind', outDir, outDir]);
        if (bind.status !== 0) this.skip();
        mounted = outDir;
        if (spawnSync('mount', ['-o', 'remount,bind,ro', outDir]).status !== 0) this.skip();
      } else {
        fs.chmodSync(outDir, 0o555);
        readOnly = outDir;
      }
      const latest = path.join(outDir, 'latest.safetensors');
      const outcome = await startSegkit(['train', config, '--work-dir', workDir, '--resume-from', latest, '--cfg-options', 'runner.max_iters=4'], { timeoutMs: 60000 }).done;
      expect(outcome.code, outcome.stderr).to.equal(1);
      const lines = problems(outcome.stderr);
      expect(lines[lines.length - 1]).to.match(
        new RegExp(`^segkit: cannot write ${escape(path.join(outDir, 'iter_3.safetensors'))}: (EACCES: permission denied|EROFS: read-only file system)$`),
      );
      expect(fs.readdirSync(outDir).sort()).to.deep.equal(saved);
      expect(saved.map((name) => sha256(path.join(outDir, name)))).to.deep.equal(hashes);
      expect(expectLoadableCheckpoints(outDir)).to.deep.equal({ latest: 2, periodic: [1, 2] });
    });

    it('a rename that fails (a folder where iter_3.safetensors goes; works for any user)', async () => {
      const workDir = path.join(dir, 'blocked-work');
      fs.mkdirSync(path.join(workDir, 'iter_3.safetensors'), { recursive: true });
      fs.writeFileSync(path.join(workDir, 'iter_3.safetensors', 'keep'), 'not a checkpoint');
      const config = writeConfig('blocked', { runner: { max_iters: 4 }, checkpoint_config: { interval: 1 } });
      const outcome = await startSegkit(['train', config, '--work-dir', workDir], { timeoutMs: 60000 }).done;
      expect(outcome.code, outcome.stderr).to.equal(1);
      const lines = problems(outcome.stderr);
      const target = path.join(workDir, 'iter_3.safetensors');
      expect(lines[lines.length - 1]).to.equal(`segkit: cannot write ${target}: ${target} is a folder (EISDIR)`);
      expect(temporaryFiles(workDir)).to.deep.equal([]);
      expect(expectLoadableCheckpoints(workDir)).to.deep.equal({ latest: 2, periodic: [1, 2] });
      expect(outcome.stdout).to.not.match(/finished/);
    });
  });

  it('each error before the training loop, with 2 loader workers (and bad test/infer output folders), exits non-zero with one line, within a second of printing it', async () => {
    const withWorkers = (c: any) => (c.data.workers_per_gpu = 2);
    const config = writeConfig('preloop', {}, withWorkers);
    const hookConfig = writeConfig('preloop-hook', { plugins: ['@segkit/backend-cpu-native', './hooks.ts'], custom_hooks: [{ type: 'ExplodingHook' }] }, withWorkers);
    // A checkpoint cut short, as a kill during a non-atomic copy left it (header intact, tensors missing).
    const damaged = path.join(dir, 'damaged.safetensors');
    const header = Buffer.from(JSON.stringify({ __metadata__: { format: 'segkit', meta: '{"iter":2}' }, 'backbone.w': { dtype: 'F32', shape: [1000], data_offsets: [0, 4000] } }).padEnd(96));
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(damaged, Buffer.concat([prefix, header, Buffer.alloc(1000)]));
    const aFile = path.join(dir, 'not-a-folder');
    fs.writeFileSync(aFile, '');
    const work = path.join(dir, 'preloop-work');
    const cases: Array<{ what: string; args: string[]; message: string }> = [
      { what: 'resume from a damaged checkpoint', args: [config, '--work-dir', work, '--resume-from', damaged], message: `segkit: --resume-from: ${damaged}: not a valid safetensors checkpoint (tensor backbone.w lies outside the file)` },
      { what: 'resume from a missing checkpoint', args: [config, '--work-dir', work, '--resume-from', path.join(dir, 'gone.safetensors')], message: `segkit: --resume-from: checkpoint not found: ${path.join(dir, 'gone.safetensors')}` },
      { what: '--load-from a missing file', args: [config, '--work-dir', work, '--load-from', path.join(dir, 'gone.pth')], message: `segkit: checkpoint not found: ${path.join(dir, 'gone.pth')}` },
      { what: 'a hook whose constructor throws', args: [hookConfig, '--work-dir', work], message: 'segkit: custom_hooks.0: ExplodingHook failed to build: cannot open the dashboard socket' },
      { what: '--work-dir that is a file', args: [config, '--work-dir', aFile], message: `segkit: work_dir: cannot create ${aFile}: ${aFile} is a file, not a folder (EEXIST)` },
      { what: '--work-dir below a file', args: [config, '--work-dir', path.join(aFile, 'run')], message: `segkit: work_dir: cannot create ${path.join(aFile, 'run')}: ${aFile} is a file, not a folder (ENOTDIR)` },
      { what: 'max_iters=1e9999', args: [config, '--work-dir', work, '--cfg-options', 'runner.max_iters=1e9999'], message: 'segkit: runner.max_iters: expected a positive integer, got Infinity' },
      { what: 'seed=1e9999', args: [config, '--work-dir', work, '--cfg-options', 'seed=1e9999'], message: 'segkit: seed: expected an integer, got Infinity' },
    ]
      // Cases run three at a time: each its own work dir (a work dir has one writer at a time).
      .map((c, i) => ({ ...c, args: ['train', ...c.args.map((arg) => (arg === work ? `${work}-${i}` : arg))] }));
    // Output folders of test / infer are created before the model loads (the checkpoint need not exist).
    cases.push(
      { what: 'test --show-dir below a file', args: ['test', config, damaged, '--show-dir', path.join(aFile, 'shown')], message: `segkit: --show-dir: cannot create ${path.join(aFile, 'shown')}: ${aFile} is a file, not a folder (ENOTDIR)` },
      { what: 'infer --out that is a file', args: ['infer', config, damaged, path.join(data(), 'images', 'training', 'x.png'), '--out', aFile], message: `segkit: --out: cannot create ${aFile}: ${aFile} is a file, not a folder (EEXIST)` },
    );
    // Three at a time: the machine's two cores are shared.
    const outcomes: Outcome[] = [];
    for (let i = 0; i < cases.length; i += 3) {
      outcomes.push(...(await Promise.all(cases.slice(i, i + 3).map(({ args }) => startSegkit(args, { timeoutMs: 60000 }).done))));
    }
    for (const [index, { what, message }] of cases.entries()) {
      const outcome = outcomes[index]!;
      expect(outcome.signal, `${what}: killed by the test's timeout, i.e. it hung`).to.equal(null);
      expect(outcome.code, `${what}: ${outcome.stderr}`).to.equal(1);
      const lines = problems(outcome.stderr);
      expect(lines, what).to.deep.equal([message]);
      expect(outcome.afterErrorLine, `${what}: ms from the message to the exit`).to.be.lessThan(2500);
    }
  });

  it('a hook whose plain-RxJS subscriber throws every iteration: training completes, one warning plus one "failed N more times" line', async () => {
    const config = writeConfig('raw-rxjs', { runner: { max_iters: 4 }, checkpoint_config: { interval: 2 }, plugins: ['@segkit/backend-cpu-native', './hooks.ts'], custom_hooks: [{ type: 'RawRxjsHook' }] });
    const workDir = path.join(dir, 'raw-rxjs-work');
    const outcome = await startSegkit(['train', config, '--work-dir', workDir], { timeoutMs: 60000 }).done;
    expect(outcome.code, outcome.stderr).to.equal(0);
    expect(outcome.stdout).to.contain(`finished 4 iterations; work_dir: ${workDir}`);
    expect(problems(outcome.stderr)).to.deep.equal([
      'warning: hook a bus.on() subscriber failed on iter:end: dashboard unreachable',
      'warning: hook a bus.on() subscriber failed 3 more times on iter:end with the same error: dashboard unreachable',
    ]);
    expect(expectLoadableCheckpoints(workDir)).to.deep.equal({ latest: 4, periodic: [2, 4] });
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
