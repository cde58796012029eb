import * as tf from '@tensorflow/tfjs-core';
import type { BackendProvider } from '@segkit/core';

export interface TfjsNodeProviderOptions {
  /** segkit/tfjs backend name users select, e.g. 'tensorflow'. */
  name: string;
  priority: number;
  packageName: string;
  /** The optional peer dependency, e.g. '@tensorflow/tfjs-node'. */
  moduleName: string;
  /** The tfjs backend that module registers when required ('tensorflow' for both tfjs-node packages). */
  registeredBackend: string;
  /** How to load the module (tests inject a fake); defaults to require. */
  requireModule?: (moduleName: string) => unknown;
}

/**
 * A provider for a tfjs-node flavour: requires the (optional, user-installed) module inside
 * try/catch and reports why it is unusable in one line. When `name` differs from the backend the
 * module registers, the backend is also registered under `name`, with its kernels.
 */
export function createTfjsNodeBackendProvider(options: TfjsNodeProviderOptions): BackendProvider {
  const { name, priority, packageName, moduleName, registeredBackend } = options;
  const requireModule = options.requireModule ?? ((id: string) => require(id));
  return {
    name,
    priority,
    packageName,
    async load() {
      try {
        requireModule(moduleName);
      } catch (error) {
        const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
        if (message.startsWith(`Cannot find module '${moduleName}'`)) {
          return `${moduleName} is not installed (an optional peer dependency: npm install ${moduleName}@${tf.version_core}; see ${packageName}'s README)`;
        }
        return `${moduleName} failed to load (${message})`;
      }
      const factory = tf.findBackendFactory(registeredBackend);
      if (!factory) {
        return `${moduleName} loaded but registered no '${registeredBackend}' backend with this @tensorflow/tfjs-core (${tf.version_core}); install the same version of both`;
      }
      if (name !== registeredBackend && !tf.findBackendFactory(name)) {
        tf.registerBackend(name, factory, 0);
        for (const kernel of tf.getKernelsForBackend(registeredBackend)) tf.registerKernel({ ...kernel, backendName: name });
      }
      return null;
    },
  };
}
