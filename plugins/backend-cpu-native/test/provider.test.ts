import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { selectBackend, CPU_BACKEND_PROVIDER, isSegkitPlugin } from '@segkit/core';
import { loadAddon } from '../src/addon';
import { createNativeBackendProvider, nativeBackendProvider } from '../src/provider';
import { fastCpuKernelsRegistered, plugin } from '../src';
import { checkNoTensorLeaks } from './helpers';

function recordingLogger() {
  const lines: string[] = [];
  return { lines, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
}

const fail = (message: string): never => {
  throw new Error(message);
};

describe('native backend provider', () => {
  const previousBackend = tf.getBackend();
  afterEach(async () => {
    await tf.setBackend(previousBackend);
  });
  checkNoTensorLeaks();

  it('is a segkit plugin offering backend "native" at priority 100', () => {
    expect(isSegkitPlugin(plugin)).to.equal(true);
    expect(plugin.name).to.equal('@segkit/backend-cpu-native');
    expect(nativeBackendProvider).to.include({ name: 'native', priority: 100, packageName: '@segkit/backend-cpu-native' });
  });

  it('loads the built addon and registers the backend', async () => {
    expect(await nativeBackendProvider.load()).to.equal(null);
    expect(tf.findBackendFactory('native')).to.be.a('function');
  });

  it('reports a one-line reason, without throwing, when the addon is not built', async () => {
    const missing = loadAddon(['/nonexistent/segkit_native.node']);
    expect(missing.addon).to.equal(undefined);
    const reason = await createNativeBackendProvider(() => missing).load();
    expect(reason).to.be.a('string').and.match(/not built/);
    expect(reason).to.not.include('\n');
    const throwing = createNativeBackendProvider(() => {
      throw new Error('boom');
    });
    expect(await throwing.load()).to.match(/boom/);
  });

  it("reports a broken addon file as a reason too", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-native-')), 'segkit_native.node');
    fs.writeFileSync(file, 'not a shared library');
    const broken = loadAddon([file]);
    fs.rmSync(path.dirname(file), { recursive: true });
    expect(broken.reason).to.match(/failed to load/);
  });

  it("backend 'auto' falls back to cpu with a one-line notice when the addon is missing", async () => {
    const logger = recordingLogger();
    const unavailable = createNativeBackendProvider(() => ({ reason: 'native addon not built' }));
    const choice = await selectBackend('auto', [unavailable, CPU_BACKEND_PROVIDER], logger, fail);
    expect(choice.name).to.equal('cpu');
    expect(logger.lines).to.have.length(1);
    expect(logger.lines[0]).to.match(/native: native addon not built; cpu will run with segkit's TypeScript kernels/);
    expect(fastCpuKernelsRegistered()).to.equal(true);
  });

  it("backend 'auto' picks native when it is available", async () => {
    const logger = recordingLogger();
    const choice = await selectBackend('auto', [CPU_BACKEND_PROVIDER, nativeBackendProvider], logger, fail);
    expect(choice.name).to.equal('native');
    expect(tf.getBackend()).to.equal('native');
  });
});
