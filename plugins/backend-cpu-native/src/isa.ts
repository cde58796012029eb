import type { NativeAddon } from './engine';

/** SEGKIT_NATIVE_ISA's values, fastest first, and the micro-kernel each names. */
export const ISA_MICRO_KERNELS: Readonly<Record<string, string>> = { avx512: 'avx512', avx2: 'avx2-fma', portable: 'portable' };

export const ISA_ENV = 'SEGKIT_NATIVE_ISA';

/** The micro-kernels the addon can run here (an addon built before the ISA dispatch knows only its own). */
function availableKernels(addon: NativeAddon): string[] {
  return typeof addon.microKernels === 'function' ? addon.microKernels() : [addon.microKernel()];
}

/**
 * Checks SEGKIT_NATIVE_ISA (which the addon reads when it loads, to force a lower path than CPUID's
 * best) against what this CPU runs; a one-line reason when it names something else, else null.
 */
export function isaRequestProblem(addon: NativeAddon, requested: string | undefined = process.env[ISA_ENV]): string | null {
  if (requested === undefined || requested === '') return null;
  const kernel = ISA_MICRO_KERNELS[requested];
  if (!kernel) return `${ISA_ENV}: expected one of ${Object.keys(ISA_MICRO_KERNELS).join(', ')}, got '${requested}'`;
  const available = availableKernels(addon);
  if (!available.includes(kernel)) return `${ISA_ENV}=${requested}: this CPU runs only ${available.join(', ')}`;
  if (addon.microKernel() !== kernel) return `${ISA_ENV}=${requested}: the addon chose ${addon.microKernel()} (rebuild it: npm rebuild @segkit/backend-cpu-native)`;
  return null;
}

/** One line for logs and bench headers: the ISA chosen, what else this CPU runs, the thread count. */
export function describeNativeBackend(addon: NativeAddon): string {
  const others = availableKernels(addon).filter((name) => name !== addon.microKernel());
  const forced = process.env[ISA_ENV] ? ` (forced by ${ISA_ENV})` : '';
  return `ISA ${addon.microKernel()}${forced}${others.length ? `, also runs ${others.join(', ')}` : ''}; ${addon.numThreads()} thread(s)`;
}
