import * as path from 'path';

let jitiInstance: { import(id: string): Promise<unknown> } | undefined;

/**
 * Loads a plugin or config module: `.ts` files through jiti (which keeps decorator metadata,
 * unlike esbuild-based loaders), everything else through Node's own require.
 */
export async function loadModule(file: string): Promise<unknown> {
  if (/\.(ts|mts|cts)$/.test(file)) {
    if (!jitiInstance) {
      const { createJiti } = require('jiti') as typeof import('jiti');
      jitiInstance = createJiti(path.join(process.cwd(), 'noop.js'), { moduleCache: true, interopDefault: false });
    }
    return jitiInstance.import(file);
  }
  return require(file);
}
