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
      // '@segkit/core' always resolves to this very copy of core, so plugin files share the kernel's
      // registries and classes even when they live outside the project's node_modules tree.
      jitiInstance = createJiti(path.join(process.cwd(), 'noop.js'), {
        moduleCache: true,
        interopDefault: false,
        // Entry points longest first: jiti matches aliases as prefixes.
        alias: {
          '@segkit/core/plugin': path.resolve(__dirname, '..', 'plugin-api.js'),
          '@segkit/core/runtime': path.resolve(__dirname, '..', 'runtime.js'),
          '@segkit/core/testing': path.resolve(__dirname, '..', 'testing', 'index.js'),
          '@segkit/core': path.resolve(__dirname, '..', 'index.js'),
        },
      });
    }
    return jitiInstance.import(file);
  }
  return require(file);
}
