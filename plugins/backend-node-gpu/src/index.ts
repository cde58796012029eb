import { definePlugin, type SegkitPlugin } from '@segkit/core';
import { createTfjsNodeBackendProvider } from '@segkit/backend-node';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { name: packageName, version } = require('../../package.json') as { name: string; version: string };

/**
 * Backend 'tensorflow-gpu' (priority 300): @tensorflow/tfjs-node-gpu registers tfjs backend
 * 'tensorflow'; it is also registered as 'tensorflow-gpu' so configs and `auto` can tell it from the
 * CPU build.
 */
export const tfjsNodeGpuBackendProvider = createTfjsNodeBackendProvider({
  name: 'tensorflow-gpu',
  priority: 300,
  packageName,
  moduleName: '@tensorflow/tfjs-node-gpu',
  registeredBackend: 'tensorflow',
});

export const plugin: SegkitPlugin = definePlugin({ name: packageName, version, components: { backends: [tfjsNodeGpuBackendProvider] } });
