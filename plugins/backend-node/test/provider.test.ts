import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { expect } from 'chai';
import { CPU_BACKEND_PROVIDER, isSegkitPlugin, selectBackend } from '@segkit/core';
import { createTfjsNodeBackendProvider, plugin, tfjsNodeBackendProvider } from '../src';

const FAKE_BACKEND = 'segkit-test-fake-tensorflow';

const fail = (message: string): never => {
  throw new Error(message);
};

describe('@segkit/backend-node', () => {
  let tensorsBefore = 0;
  beforeEach(() => (tensorsBefore = tf.memory().numTensors));
  afterEach(() => expect(tf.memory().numTensors).to.equal(tensorsBefore));
  after(() => {
    for (const name of [FAKE_BACKEND, `${FAKE_BACKEND}-alias`]) {
      if (tf.findBackendFactory(name)) tf.removeBackend(name);
    }
  });

  it("is a plugin offering backend 'tensorflow' at priority 200", () => {
    expect(isSegkitPlugin(plugin)).to.equal(true);
    expect(tfjsNodeBackendProvider).to.include({ name: 'tensorflow', priority: 200, packageName: '@segkit/backend-node' });
  });

  it('reports, without throwing, that @tensorflow/tfjs-node is not installed', async () => {
    const reason = await tfjsNodeBackendProvider.load();
    expect(reason).to.match(/@tensorflow\/tfjs-node is not installed/).and.to.match(/npm install @tensorflow\/tfjs-node@4\.22\.0/);
    expect(reason).to.not.include('\n');
  });

  it("lets 'auto' fall back to cpu with the reason logged", async () => {
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    const choice = await selectBackend('auto', [tfjsNodeBackendProvider, CPU_BACKEND_PROVIDER], logger, fail);
    expect(choice.name).to.equal('cpu');
    expect(lines.join('\n')).to.match(/tensorflow: @tensorflow\/tfjs-node is not installed/);
  });

  it('reports an installed module that fails to load (e.g. a missing native library)', async () => {
    const provider = createTfjsNodeBackendProvider({
      name: 'tensorflow', priority: 200, packageName: 'x', moduleName: '@tensorflow/tfjs-node', registeredBackend: 'tensorflow',
      requireModule: () => {
        throw new Error("Cannot find module '/x/node_modules/@tensorflow/tfjs-node/lib/napi-v8/tfjs_binding.node'");
      },
    });
    expect(await provider.load()).to.match(/^@tensorflow\/tfjs-node failed to load \(Cannot find module '\/x/);
  });

  it('succeeds when the module registers its backend, and aliases it under another name', async () => {
    const fakeModule = () => {
      if (!tf.findBackendFactory(FAKE_BACKEND)) tf.registerBackend(FAKE_BACKEND, () => new MathBackendCPU(), -1);
      tf.registerKernel({ kernelName: 'SegkitTestKernel', backendName: FAKE_BACKEND, kernelFunc: () => [] });
    };
    const options = { priority: 300, packageName: 'x', moduleName: 'fake-tfjs-node', registeredBackend: FAKE_BACKEND, requireModule: fakeModule };
    expect(await createTfjsNodeBackendProvider({ ...options, name: FAKE_BACKEND }).load()).to.equal(null);
    expect(await createTfjsNodeBackendProvider({ ...options, name: `${FAKE_BACKEND}-alias` }).load()).to.equal(null);
    expect(tf.getKernel('SegkitTestKernel', `${FAKE_BACKEND}-alias`)).to.not.equal(undefined);
    tf.unregisterKernel('SegkitTestKernel', FAKE_BACKEND);
    tf.unregisterKernel('SegkitTestKernel', `${FAKE_BACKEND}-alias`);
  });

  it('reports a module that registered no backend', async () => {
    const provider = createTfjsNodeBackendProvider({ name: 'n', priority: 1, packageName: 'x', moduleName: 'fake', registeredBackend: 'segkit-no-such-backend', requireModule: () => ({}) });
    expect(await provider.load()).to.match(/registered no 'segkit-no-such-backend' backend/);
  });
});
