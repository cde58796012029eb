import { definePlugin, type SegkitPlugin } from '@segkit/core';
import { WebGpuBackendProvider } from './provider';

export { WebGpuBackendProvider, describeAdapter, formatAdapter, BACKEND_NAME, WEBGPU_PRIORITY, type AdapterDescription, type GpuDevice, type ModuleLoader } from './provider';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { name: packageName, version } = require('../../package.json') as { name: string; version: string };

/** Backend 'webgpu' (priority 250 on a real GPU; a CPU-emulated adapter only when named): Dawn + tfjs's WebGPU backend. */
export const webGpuBackendProvider = new WebGpuBackendProvider(packageName);

export const plugin: SegkitPlugin = definePlugin({ name: packageName, version, components: { backends: [webGpuBackendProvider] } });
