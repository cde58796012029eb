import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { createKernel, loadConfig } from '@segkit/core';
import { REGISTRY_NAMES } from '@segkit/core/plugin';
import { recordingLogger } from '@segkit/core/testing';
import { PRESET_PLUGINS, plugin } from '../src';

const REPO = path.join(__dirname, '../../../..');
const PLUGINS_DIR = path.join(REPO, 'plugins');
// Backends whose engine is an optional peer the user installs (TensorFlow, WebGPU) and the MPI launcher (it needs
// the system's MPI) stay out of the preset.
const NOT_IN_PRESET = ['@segkit/backend-node', '@segkit/backend-node-gpu', '@segkit/backend-webgpu', '@segkit/dist-mpi', '@segkit/example-custom-loss', '@segkit/preset-mmseg'];

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  segkit?: { provides?: Record<string, string[]>; plugin?: boolean };
}

// `"segkit": { "plugin": false }` marks a library that is no kernel plugin (@segkit/web).
const manifests: Manifest[] = fs
  .readdirSync(PLUGINS_DIR)
  .map((dir) => JSON.parse(fs.readFileSync(path.join(PLUGINS_DIR, dir, 'package.json'), 'utf8')) as Manifest)
  .filter((manifest) => manifest.segkit?.plugin !== false);

describe('@segkit/preset-mmseg', () => {
  it("depends on every plugin of this repo except the TensorFlow and WebGPU backends and the example, and lists them in PRESET_PLUGINS", () => {
    const standard = manifests.map((m) => m.name).filter((name) => !NOT_IN_PRESET.includes(name)).sort();
    expect([...PRESET_PLUGINS]).to.deep.equal(standard);
    const own = manifests.find((m) => m.name === '@segkit/preset-mmseg')!;
    expect(Object.keys(own.dependencies ?? {}).sort()).to.deep.equal(['@segkit/core', ...standard].sort());
  });

  it('its plugin registers nothing', async () => {
    const kernel = await createKernel({ plugins: [plugin], backend: 'cpu', logger: recordingLogger() });
    const bare = await createKernel({ backend: 'cpu', logger: recordingLogger() });
    for (const registry of REGISTRY_NAMES) expect(kernel.registries[registry].list(), registry).to.deep.equal(bare.registries[registry].list());
  });

  it("every plugin's `segkit.provides` is exactly the types it registers", async () => {
    for (const manifest of manifests.filter((m) => m.name !== '@segkit/preset-mmseg')) {
      const kernel = await createKernel({ plugins: [manifest.name], backend: 'cpu', logger: recordingLogger() });
      const registered: Record<string, string[]> = {};
      for (const registry of REGISTRY_NAMES) {
        const types = kernel.registries[registry].describe().filter((entry) => entry.plugin === manifest.name).map((entry) => entry.type);
        if (types.length) registered[registry] = types.sort();
      }
      const declared = Object.fromEntries(
        Object.entries(manifest.segkit?.provides ?? {})
          .filter(([category]) => (REGISTRY_NAMES as readonly string[]).includes(category))
          .map(([category, types]) => [category, [...types].sort()]),
      );
      expect(declared, manifest.name).to.deep.equal(registered);
    }
  });

  it('every shipped config finds, without its `plugins` list, exactly the plugins it lists, all in the preset', async () => {
    const files = ['unet', 'pspnet', 'demo'].flatMap((dir) => fs.readdirSync(path.join(REPO, 'configs', dir)).map((file) => path.join(REPO, 'configs', dir, file)));
    expect(files.length).to.be.greaterThan(6);
    for (const file of files) {
      const { plugins: listed, ...config } = await loadConfig(file);
      const kernel = await createKernel({ configDir: path.dirname(file), backend: 'cpu', logger: recordingLogger() });
      await kernel.ensureProviders(config);
      expect([...kernel.autoLoadedPlugins].sort(), path.basename(file)).to.deep.equal([...new Set(listed as string[])].sort());
      expect(kernel.autoLoadedPlugins.filter((name) => !(PRESET_PLUGINS as readonly string[]).includes(name)), path.basename(file)).to.deep.equal([]);
    }
  });
});
