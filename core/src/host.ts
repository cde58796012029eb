import { SegkitError } from './errors';

interface NodeBuiltins {
  fs: typeof import('fs');
  path: typeof import('path');
  module: typeof import('module');
}

function hostProcess(): { getBuiltinModule?: (id: string) => unknown } | undefined {
  return (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
}

/** Whether Node's built-in modules can be loaded here. */
export function isNode(): boolean {
  return typeof hostProcess()?.getBuiltinModule === 'function';
}

/**
 * A Node built-in module, looked up when called rather than imported, so that the browser-safe runtime
 * (`@segkit/core/runtime`) bundles without any Node module. Outside Node it is one clear error saying that
 * `purpose` (e.g. "reading class_weight from a file") needs Node.
 */
export function nodeBuiltin<K extends keyof NodeBuiltins>(name: K, purpose: string): NodeBuiltins[K] {
  const loaded = hostProcess()?.getBuiltinModule?.(name);
  if (!loaded) throw new SegkitError(`${purpose} needs Node.js (>= 20.19); it is not available in this environment (a browser?)`);
  return loaded as NodeBuiltins[K];
}
