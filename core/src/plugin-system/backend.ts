import * as tf from '@tensorflow/tfjs-core';
import type { Logger } from './registries';

/** A tfjs backend a plugin can provide; `'auto'` takes the available one with the highest priority. */
export interface BackendProvider {
  /** tfjs backend name, e.g. 'native'. */
  readonly name: string;
  /** node-gpu 300, node 200, native 100, core's cpu 0. */
  readonly priority: number;
  readonly packageName: string;
  /**
   * Registers the tfjs backend if possible. Resolves to null when ready, or a one-line reason why not (never
   * throws). `request.byName` is false under 'auto' (a backend may then decline, e.g. WebGPU on a software adapter).
   */
  load(request?: BackendLoadRequest): Promise<string | null>;
  /** After a successful load: one line on how it runs here (the instruction set and threads, the WebGPU adapter). */
  describe?(): string | undefined;
  /** Frees what the backend holds (a GPU device keeps Node alive until destroyed); called at the end of a run. */
  release?(): Promise<void>;
}

export interface BackendLoadRequest {
  /** True when the config or --backend names this backend; false when 'auto' is trying it. */
  readonly byName: boolean;
}

/** `name`, plus the provider's describe() line in brackets when it has one. */
export function describedName(provider: BackendProvider): string {
  let details: string | undefined;
  try {
    details = provider.describe?.();
  } catch {
    details = undefined; // a description is for the log only: never a reason to fail
  }
  return details ? `${provider.name} [${details}]` : provider.name;
}

export const CPU_BACKEND_PROVIDER: BackendProvider = {
  name: 'cpu',
  priority: 0,
  packageName: '@segkit/core',
  async load() {
    require('@tensorflow/tfjs-backend-cpu');
    return null;
  },
};

/**
 * segkit's optional fused kernels: a backend plugin registers them with tfjs (registerKernel), and
 * segkit code runs one where the active backend has it, generic tfjs ops elsewhere. Batch norm's
 * are nn.BATCH_MOMENTS_KERNEL and nn.BATCH_NORM_GRAD_KERNEL.
 */
export function backendHasKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

/** Backends whose tensors cannot be read synchronously (`dataSync` throws or stalls the GPU pipeline). */
const ASYNC_ONLY_BACKENDS = new Set(['webgpu', 'webgl']);

/** Whether the active backend allows synchronous readback; CPU-side checks are skipped where it does not. */
export function backendReadsSynchronously(): boolean {
  return !ASYNC_ONLY_BACKENDS.has(tf.getBackend());
}

/**
 * One SGD step of a float32 parameter, PyTorch's semantics: inputs { param, grad, buffer? } (no
 * buffer on the first step), attrs { lr, momentum, dampening, weightDecay, nesterov } →
 * [newParam] or, when momentum ≠ 0, [newParam, newBuffer]. @segkit/optimizers' SGD uses it.
 */
export const SGD_UPDATE_KERNEL = 'SegkitSgdUpdate';

/**
 * One Adam / AdamW step of a float32 parameter, PyTorch's semantics: inputs { param, grad, expAvg?,
 * expAvgSq?, maxExpAvgSq? } (moments absent on the parameter's first step; maxExpAvgSq only with amsgrad
 * after its first step), attrs { lr, beta1, beta2, eps, weightDecay, decoupled, amsgrad, step } →
 * [newParam, newExpAvg, newExpAvgSq] (+ newMaxExpAvgSq with amsgrad). @segkit/optimizers' Adam uses it.
 */
export const ADAM_UPDATE_KERNEL = 'SegkitAdamUpdate';

export interface BackendChoice {
  readonly name: string;
  /** Why each other backend was not taken, for the log. */
  readonly skipped: readonly { name: string; reason: string }[];
}

/**
 * Picks and activates a tfjs backend. `requested` is 'auto' or a backend name; an explicitly named
 * backend that cannot load is an error, under 'auto' it is skipped with its reason logged.
 */
export async function selectBackend(
  requested: string,
  providers: readonly BackendProvider[],
  logger: Logger,
  fail: (message: string) => never,
): Promise<BackendChoice> {
  const ordered = [...providers].sort((a, b) => b.priority - a.priority);
  const skipped: { name: string; reason: string }[] = [];
  if (requested !== 'auto') {
    const provider = ordered.find((p) => p.name === requested);
    if (!provider) {
      fail(`backend: unknown backend '${requested}'; available: auto, ${ordered.map((p) => p.name).join(', ')} (is its plugin listed in \`plugins\`?)`);
    }
    const reason = await provider.load({ byName: true });
    if (reason !== null) fail(`backend: '${requested}' cannot be used: ${reason}`);
    await activate(provider.name, fail);
    logger.info(`backend: ${describedName(provider)} (requested)`);
    return { name: provider.name, skipped };
  }
  for (const provider of ordered) {
    const reason = await provider.load({ byName: false });
    if (reason === null && (await tryActivate(provider.name))) {
      for (const lower of ordered.slice(ordered.indexOf(provider) + 1)) skipped.push({ name: lower.name, reason: `lower priority than ${provider.name}` });
      const notes = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
      logger.info(`backend: ${describedName(provider)} (auto${notes ? `; skipped ${notes}` : ''})`);
      return { name: provider.name, skipped };
    }
    skipped.push({ name: provider.name, reason: reason ?? 'failed to initialise' });
  }
  return fail(`backend: no backend could be loaded (${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')})`);
}

async function tryActivate(name: string): Promise<boolean> {
  try {
    return (await tf.setBackend(name)) && tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function activate(name: string, fail: (message: string) => never): Promise<void> {
  if (!(await tryActivate(name))) fail(`backend: '${name}' failed to initialise`);
}
