import { definePlugin, type SegkitPlugin } from '@segkit/core';
import { createTfjsNodeBackendProvider } from './tfjs-node-provider';

export { createTfjsNodeBackendProvider, type TfjsNodeProviderOptions } from './tfjs-node-provider';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { name: packageName, version } = require('../../package.json') as { name: string; version: string };

/** Backend 'tensorflow' (priority 200): TensorFlow's CPU kernels through @tensorflow/tfjs-node. */
export const tfjsNodeBackendProvider = createTfjsNodeBackendProvider({
  name: 'tensorflow',
  priority: 200,
  packageName,
  moduleName: '@tensorflow/tfjs-node',
  registeredBackend: 'tensorflow',
});

export const plugin: SegkitPlugin = definePlugin({ name: packageName, version, components: { backends: [tfjsNodeBackendProvider] } });
