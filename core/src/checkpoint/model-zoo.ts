import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import { nearestName, SegkitError } from '../errors';

/** MMCV's `open-mmlab://` names (mmcv/model_zoo/open_mmlab.json) for the backbones segkit has. */
export const OPEN_MMLAB_MODEL_URLS: Readonly<Record<string, string>> = {
  resnet18_v1c: 'https://download.openmmlab.com/pretrain/third_party/resnet18_v1c-b5776b93.pth',
  resnet50_v1c: 'https://download.openmmlab.com/pretrain/third_party/resnet50_v1c-2cccc1ad.pth',
  resnet101_v1c: 'https://download.openmmlab.com/pretrain/third_party/resnet101_v1c-e67eebb6.pth',
};

/**
 * torchvision's ResNet weights: the names MMCV's `torchvision://` accepts (the pre-0.13 `model_urls`, whose
 * files torchvision ≥ 0.13 calls IMAGENET1K_V1, plus the `name.weights` spelling).
 */
export const TORCHVISION_MODEL_URLS: Readonly<Record<string, string>> = {
  resnet18: 'https://download.pytorch.org/models/resnet18-f37072fd.pth',
  resnet34: 'https://download.pytorch.org/models/resnet34-b627a593.pth',
  resnet50: 'https://download.pytorch.org/models/resnet50-0676ba61.pth',
  resnet101: 'https://download.pytorch.org/models/resnet101-63fe2227.pth',
  resnet152: 'https://download.pytorch.org/models/resnet152-394f9c45.pth',
  'resnet18.imagenet1k_v1': 'https://download.pytorch.org/models/resnet18-f37072fd.pth',
  'resnet34.imagenet1k_v1': 'https://download.pytorch.org/models/resnet34-b627a593.pth',
  'resnet50.imagenet1k_v1': 'https://download.pytorch.org/models/resnet50-0676ba61.pth',
  'resnet50.imagenet1k_v2': 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth',
  'resnet101.imagenet1k_v1': 'https://download.pytorch.org/models/resnet101-63fe2227.pth',
  'resnet101.imagenet1k_v2': 'https://download.pytorch.org/models/resnet101-cd907fc2.pth',
  'resnet152.imagenet1k_v1': 'https://download.pytorch.org/models/resnet152-394f9c45.pth',
  'resnet152.imagenet1k_v2': 'https://download.pytorch.org/models/resnet152-f82ba261.pth',
};

/** `$SEGKIT_HOME`, else `$XDG_CACHE_HOME/segkit`, else `~/.cache/segkit` (torch hub's rule for TORCH_HOME). */
export function segkitHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SEGKIT_HOME) return path.resolve(env.SEGKIT_HOME);
  return path.join(env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache'), 'segkit');
}

/** Where downloaded checkpoints are kept: `<segkit home>/checkpoints`. */
export function checkpointCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(segkitHome(env), 'checkpoints');
}

const URL_SCHEMES = ['open-mmlab://', 'openmmlab://', 'torchvision://', 'modelzoo://', 'http://', 'https://'];

/** Whether a checkpoint reference names a model-zoo entry or a URL rather than a local file. */
export function isRemoteCheckpoint(spec: string): boolean {
  return URL_SCHEMES.some((scheme) => spec.startsWith(scheme));
}

/** The `open-mmlab://` table with `<segkit home>/open_mmlab.json` entries on top (as MMCV reads `$MMCV_HOME/open_mmlab.json`). */
function openMmlabUrls(env: NodeJS.ProcessEnv): Record<string, string> {
  const extra = path.join(segkitHome(env), 'open_mmlab.json');
  if (!fs.existsSync(extra)) return { ...OPEN_MMLAB_MODEL_URLS };
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(extra, 'utf8'));
  } catch {
    throw new SegkitError(`${extra}: not valid JSON (expected {"name": "url", ...})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((url) => typeof url === 'string')) {
    throw new SegkitError(`${extra}: expected an object of model names to URLs`);
  }
  return { ...OPEN_MMLAB_MODEL_URLS, ...(parsed as Record<string, string>) };
}

function lookUp(table: Record<string, string>, name: string, spec: string, scheme: string): string {
  const url = table[name];
  if (url) return url;
  const near = nearestName(name, Object.keys(table));
  throw new SegkitError(`${spec}: unknown ${scheme} model '${name}'${near ? ` (did you mean '${near}'?)` : ''}; known: ${Object.keys(table).join(', ')}`);
}

/** The download URL a checkpoint reference stands for (`open-mmlab://resnet50_v1c` → its https URL). */
export function resolveCheckpointUrl(spec: string, env: NodeJS.ProcessEnv = process.env): string {
  for (const scheme of ['open-mmlab://', 'openmmlab://']) {
    if (spec.startsWith(scheme)) return lookUp(openMmlabUrls(env), spec.slice(scheme.length), spec, 'open-mmlab://');
  }
  for (const scheme of ['torchvision://', 'modelzoo://']) {
    // MMCV accepts `ResNet50_Weights.IMAGENET1K_V1` as `resnet50.imagenet1k_v1`.
    if (spec.startsWith(scheme)) return lookUp({ ...TORCHVISION_MODEL_URLS }, spec.slice(scheme.length).toLowerCase().replace('_weights', ''), spec, 'torchvision://');
  }
  if (spec.startsWith('http://') || spec.startsWith('https://')) return spec;
  throw new SegkitError(`${spec}: not a model-zoo name or URL`);
}

/** Whether `SEGKIT_OFFLINE` turns downloads off. */
function isOfflineEnv(env: NodeJS.ProcessEnv): boolean {
  const value = env.SEGKIT_OFFLINE?.trim().toLowerCase();
  return value !== undefined && value !== '' && value !== '0' && value !== 'false';
}

/** The hash prefix in a published checkpoint's name (`resnet50_v1c-2cccc1ad.pth` → `2cccc1ad`), as torch hub finds it. */
export function expectedHashPrefix(fileName: string): string | null {
  return /-([a-f0-9]{8,64})\.[a-z]+$/.exec(fileName)?.[1] ?? null;
}

export interface FetchCheckpointOptions {
  /**
   * Never download: a checkpoint absent from the cache is an error naming where to put it. Default: on when
   * the environment sets `SEGKIT_OFFLINE` (to anything but '', '0' or 'false'), as HF_HUB_OFFLINE does.
   */
  offline?: boolean;
  /** Defaults to `checkpointCacheDir()`. */
  cacheDir?: string;
  /** Where the progress line goes (default stderr); null for none. */
  progress?: NodeJS.WritableStream | null;
  /** Gives up on a connection silent this long (default 30 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

function formatMB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

/** Progress on a terminal: one line rewritten in place; elsewhere the start and the end only. */
function progressReporter(stream: NodeJS.WritableStream | null, url: string, target: string) {
  const tty = Boolean(stream && (stream as NodeJS.WriteStream).isTTY);
  let lastDrawn = 0;
  const draw = (received: number, total: number | null) => {
    if (!stream || !tty) return;
    const now = Date.now();
    if (now - lastDrawn < 100 && received !== total) return;
    lastDrawn = now;
    const share = total ? `${Math.floor((100 * received) / total)}% ` : '';
    stream.write(`\rdownloading ${path.basename(target)}: ${share}(${formatMB(received)}${total ? ` of ${formatMB(total)}` : ''})`);
  };
  return {
    start(total: number | null) {
      stream?.write(`downloading ${url} to ${target}${total ? ` (${formatMB(total)})` : ''}\n`);
    },
    update: draw,
    finish(received: number, seconds: number) {
      if (stream && tty) stream.write('\n');
      stream?.write(`downloaded ${formatMB(received)} in ${seconds.toFixed(1)} s\n`);
    },
  };
}

/** GET with up to 5 redirects; resolves with the 200 response. */
function request(url: string, timeoutMs: number, redirects = 5): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https://') ? https : http;
    const req = client.get(url, { timeout: timeoutMs }, (response) => {
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400 && response.headers.location && redirects > 0) {
        response.resume();
        resolve(request(new URL(response.headers.location, url).toString(), timeoutMs, redirects - 1));
      } else if (status !== 200) {
        response.resume();
        reject(new Error(`HTTP ${status}`));
      } else resolve(response);
    });
    req.on('timeout', () => req.destroy(new Error(`no response within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
  });
}

/**
 * Streams `url` into `temporary` while hashing it; resolves with the sha256 hex digest and the size.
 * The response's own timeout (no data for `timeoutMs`) aborts it.
 */
async function download(url: string, temporary: string, timeoutMs: number, report: ReturnType<typeof progressReporter>): Promise<{ sha256: string; size: number }> {
  const response = await request(url, timeoutMs);
  const total = Number(response.headers['content-length']) || null;
  report.start(total);
  const hash = crypto.createHash('sha256');
  const out = fs.createWriteStream(temporary);
  let received = 0;
  response.setTimeout(timeoutMs, () => response.destroy(new Error(`the download stalled for ${timeoutMs / 1000} s`)));
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      hash.update(chunk);
      received += chunk.length;
      report.update(received, total);
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
  } finally {
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }
  if (total !== null && received !== total) throw new Error(`the connection closed after ${received} of ${total} bytes`);
  return { sha256: hash.digest('hex'), size: received };
}

/**
 * The local file for a checkpoint reference. A local path is returned as it is; a model-zoo name or URL
 * (`open-mmlab://resnet50_v1c`, `torchvision://resnet50`, `https://download.openmmlab.com/...`) is looked up
 * in the cache and, if absent, downloaded into it: into a temporary file in the cache folder, checked against
 * the sha256 prefix in its name (`-2966598c.pth`), then renamed into place, so the cache never holds a partial
 * or corrupt file. Offline, or when the download fails, the error names the URL and the path to put the file at.
 */
export async function fetchCheckpoint(spec: string, options: FetchCheckpointOptions = {}): Promise<string> {
  if (!isRemoteCheckpoint(spec)) return spec;
  const env = options.env ?? process.env;
  const url = resolveCheckpointUrl(spec, env);
  const cacheDir = options.cacheDir ?? checkpointCacheDir(env);
  const fileName = decodeURIComponent(path.posix.basename(new URL(url).pathname));
  if (!fileName) throw new SegkitError(`${spec}: the URL ${url} names no file`);
  const target = path.join(cacheDir, fileName);
  if (fs.existsSync(target)) return target;
  const putItThere = `download ${url} and put it at ${target}`;
  const offlineByEnv = options.offline === undefined && isOfflineEnv(env);
  if (options.offline || offlineByEnv) {
    throw new SegkitError(`${spec}: not in the checkpoint cache and downloads are off (offline${offlineByEnv ? ': SEGKIT_OFFLINE is set' : ''}); ${putItThere}`);
  }
  fs.mkdirSync(cacheDir, { recursive: true });
  const temporary = path.join(cacheDir, `.${fileName}.${process.pid}.partial`);
  const report = progressReporter(options.progress === undefined ? process.stderr : options.progress, url, target);
  const started = Date.now();
  let result: { sha256: string; size: number };
  try {
    result = await download(url, temporary, options.timeoutMs ?? 30_000, report);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw new SegkitError(`${spec}: downloading ${url} failed (${(error as Error).message}); with no network, ${putItThere}`);
  }
  const expected = expectedHashPrefix(fileName);
  if (expected && !result.sha256.startsWith(expected)) {
    fs.rmSync(temporary, { force: true });
    throw new SegkitError(`${spec}: the file downloaded from ${url} is corrupt: its sha256 is ${result.sha256}, the name promises ${expected}...`);
  }
  fs.renameSync(temporary, target);
  report.finish(result.size, (Date.now() - started) / 1000);
  return target;
}
