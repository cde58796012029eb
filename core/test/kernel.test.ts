import { expect } from 'chai';
import { ContainerModule } from 'inversify';
import { z } from 'zod';
import { createKernel, definePlugin, TOKENS, SegkitError, type ComponentDefinition } from '../src';
import { errorMessage, recordingLogger, tempTree } from '../src/testing';

// Builds its options (not a real sampler): these tests look at validation and registration only.
const samplerDefinition: ComponentDefinition<any, any> = {
  type: 'OHEMPixelSampler',
  schema: z.object({
    thresh: z.number().nullable().default(null),
    min_kept: z.number().int().gt(1, { error: 'expected an integer > 1' }).default(100000),
  }),
  create: (options) => options,
};
const samplerPlugin = definePlugin({ name: 'test-sampler', version: '1.2.3', components: { samplers: [samplerDefinition] } });
const logger = recordingLogger();

describe('kernel: registries and building', () => {
  it('builds a component with defaults filled in and lists registered types', async () => {
    const kernel = await createKernel({ plugins: [samplerPlugin], backend: 'cpu', logger });
    expect(kernel.registries.samplers.list()).to.deep.equal(['OHEMPixelSampler']);
    expect(kernel.build('samplers', { type: 'OHEMPixelSampler', min_kept: 5 })).to.deep.equal({ thresh: null, min_kept: 5 });
    expect(kernel.registries.samplers.describe()[0]).to.include({ plugin: 'test-sampler', version: '1.2.3' });
  });

  it('unknown type: names the registry, registered types, nearest match and the plugin hint', async () => {
    const kernel = await createKernel({ plugins: [samplerPlugin], backend: 'cpu', logger });
    const message = await errorMessage(() => kernel.build('samplers', { type: 'OHEMSampler' }, { path: 'model.decode_head.sampler' }));
    expect(message).to.equal(
      "model.decode_head.sampler.type: unknown samplers type 'OHEMSampler'; did you mean 'OHEMPixelSampler'?; registered: OHEMPixelSampler; is its plugin listed in `plugins`?",
    );
    const known = await errorMessage(() => kernel.build('losses', { type: 'CrossEntropyLoss' }, { path: 'model.decode_head.loss_decode' }));
    // installed in this repo's node_modules (its package.json declares the type) but not loaded by this kernel
    expect(known).to.contain('it is provided by @segkit/loss-cross-entropy, which is installed but not loaded: list it in `plugins`');
  });

  it('unknown option: full path, nearest valid option, and the valid options', async () => {
    const kernel = await createKernel({ plugins: [samplerPlugin], backend: 'cpu', logger });
    const message = await errorMessage(() => kernel.build('samplers', { type: 'OHEMPixelSampler', minkept: 5 }, { path: 'model.decode_head.sampler' }));
    expect(message).to.equal("model.decode_head.sampler.minkept: unknown option of OHEMPixelSampler (did you mean 'min_kept'?); valid options: thresh, min_kept");
  });

  it('ill-typed option: path, what was expected, what was given', async () => {
    const kernel = await createKernel({ plugins: [samplerPlugin], backend: 'cpu', logger });
    expect(await errorMessage(() => kernel.build('samplers', { type: 'OHEMPixelSampler', min_kept: -5 }, { path: 'model.decode_head.sampler' }))).to.equal(
      'model.decode_head.sampler.min_kept: expected an integer > 1, got -5',
    );
    expect(await errorMessage(() => kernel.build('samplers', { type: 'OHEMPixelSampler', thresh: 'high' }, { path: 'model.decode_head.sampler' }))).to.equal(
      'model.decode_head.sampler.thresh: expected number, got "high"',
    );
    expect(await errorMessage(() => kernel.build('samplers', { min_kept: 3 }, { path: 'model.decode_head.sampler' }))).to.contain(
      'model.decode_head.sampler.type: expected the name of a samplers type, got undefined; registered: OHEMPixelSampler',
    );
  });

  it('nested configs get the parent path in their errors', async () => {
    const head: ComponentDefinition<any, any> = {
      type: 'TinyHead',
      schema: z.object({ sampler: z.unknown().optional() }),
      create: (options, ctx) => ({ sampler: ctx.build('samplers', options.sampler, 'sampler') }),
    };
    const kernel = await createKernel({ plugins: [samplerPlugin, definePlugin({ name: 'h', version: '0.0.1', components: { heads: [head] } })], backend: 'cpu', logger });
    const message = await errorMessage(() => kernel.build('heads', { type: 'TinyHead', sampler: { type: 'OHEMPixelSampler', min_kept: 0 } }, { path: 'model.decode_head' }));
    expect(message).to.equal('model.decode_head.sampler.min_kept: expected an integer > 1, got 0');
  });

  it('two plugins registering one type: names both packages', async () => {
    const other = definePlugin({ name: 'other-sampler', version: '2.0.0', components: { samplers: [{ ...samplerDefinition }] } });
    const message = await errorMessage(() => createKernel({ plugins: [samplerPlugin, other], backend: 'cpu', logger }));
    expect(message).to.equal(
      "plugins: type 'OHEMPixelSampler' of registry 'samplers' is registered twice: by test-sampler@1.2.3 and by other-sampler@2.0.0; list only one of them in `plugins`",
    );
  });

  it('a plugin may bind component records with its own ContainerModule', async () => {
    const record = { registry: 'samplers' as const, definition: samplerDefinition, plugin: { name: 'raw', version: '0.0.1' } };
    const raw = { name: 'raw', version: '0.0.1', module: new ContainerModule(({ bind }) => void bind(TOKENS.components).toConstantValue(record)) };
    const kernel = await createKernel({ plugins: [raw], backend: 'cpu', logger });
    expect(kernel.registries.samplers.describe()[0]).to.include({ type: 'OHEMPixelSampler', plugin: 'raw' });
  });

  it('a plugin that cannot be found, or that exports no plugin', async () => {
    const dir = tempTree({ 'not-a-plugin.js': 'module.exports = { hello: 1 };', 'broken.js': "require('./no-such-dependency');" });
    expect(await errorMessage(() => createKernel({ plugins: ['@segkit/does-not-exist'], configDir: dir, backend: 'cpu', logger }))).to.equal(
      `plugins: cannot find plugin package '@segkit/does-not-exist' (looked from ${dir} and ${process.cwd()}); install it with \`npm install @segkit/does-not-exist\``,
    );
    expect(await errorMessage(() => createKernel({ plugins: ['./missing.js'], configDir: dir, backend: 'cpu', logger }))).to.equal(
      `plugins: cannot find plugin file './missing.js' (resolved to ${dir}/missing.js)`,
    );
    expect(await errorMessage(() => createKernel({ plugins: ['./not-a-plugin.js'], configDir: dir, backend: 'cpu', logger }))).to.match(
      /^plugins: '\.\/not-a-plugin\.js' does not export a segkit plugin/,
    );
    // one line naming the plugin and the cause, without Node's "Require stack" listing
    expect(await errorMessage(() => createKernel({ plugins: ['./broken.js'], configDir: dir, backend: 'cpu', logger }))).to.equal(
      "plugins: plugin './broken.js' failed to load: Cannot find module './no-such-dependency'",
    );
    // the config folder is the working directory: it is named once
    expect(await errorMessage(() => createKernel({ plugins: ['@segkit/does-not-exist'], configDir: process.cwd(), backend: 'cpu', logger }))).to.equal(
      `plugins: cannot find plugin package '@segkit/does-not-exist' (looked from ${process.cwd()}); install it with \`npm install @segkit/does-not-exist\``,
    );
  });

  it('loads a plugin written as a TypeScript file (jiti)', async () => {
    const dir = tempTree({
      'my-plugin.ts': `
        import { definePlugin, z } from '@segkit/core';
        const schema: any = z.object({ factor: z.number().default(2) });
        export const plugin = definePlugin({ name: 'my-ts-plugin', version: '0.0.1', components: { losses: [{ type: 'TsLoss', schema, create: (o: { factor: number }) => o.factor }] } });
      `,
    });
    const kernel = await createKernel({ plugins: ['./my-plugin.ts'], configDir: dir, backend: 'cpu', logger });
    expect(kernel.build('losses', { type: 'TsLoss' })).to.equal(2);
  });

  it('errors are SegkitErrors (the CLI prints them without a stack trace)', async () => {
    const kernel = await createKernel({ backend: 'cpu', logger });
    try {
      kernel.build('heads', { type: 'PSPHead' });
      expect.fail('no error');
    } catch (error) {
      expect(error).to.be.instanceOf(SegkitError);
    }
  });
});

describe('kernel: backends', () => {
  // A folder with no node_modules above it: only the backends these tests list are registered.
  const isolated = tempTree({ 'README': 'no plugins installed here' });
  const provider = (name: string, priority: number, reason: string | null) =>
    definePlugin({ name: `backend-${name}`, version: '0.0.1', components: { backends: [{ name, priority, packageName: `backend-${name}`, load: async () => reason }] } });

  it("'auto' takes the highest-priority backend that loads, and logs why others were skipped", async () => {
    const log = recordingLogger();
    const kernel = await createKernel({ plugins: [provider('fancy', 500, 'not installed (npm install fancy)')], backend: 'auto', configDir: isolated, logger: log });
    expect(kernel.backend).to.equal('cpu');
    expect(log.infos).to.deep.equal(['backend: cpu (auto; skipped fancy: not installed (npm install fancy))']);
  });

  it('a named backend that cannot load is an error; an unknown one lists the available', async () => {
    expect(await errorMessage(() => createKernel({ plugins: [provider('fancy', 500, 'not installed')], backend: 'fancy', configDir: isolated, logger }))).to.equal(
      "backend: 'fancy' cannot be used: not installed",
    );
    expect(await errorMessage(() => createKernel({ backend: 'gpu', configDir: isolated, logger }))).to.equal(
      "backend: unknown backend 'gpu'; available: auto, cpu (is its plugin listed in `plugins`?)",
    );
  });
});

describe('kernel: installed backend plugins', () => {
  it("'auto' also considers backend plugins that are installed but not listed in `plugins`", async () => {
    const dir = tempTree({
      'node_modules/@segkit/backend-fake/package.json': JSON.stringify({ name: '@segkit/backend-fake', version: '9.9.9', main: 'index.js' }),
      'node_modules/@segkit/backend-fake/index.js': `
        const { definePlugin } = require(${JSON.stringify(require.resolve('../src'))});
        exports.plugin = definePlugin({ name: '@segkit/backend-fake', version: '9.9.9',
          components: { backends: [{ name: 'fake', priority: 50, packageName: '@segkit/backend-fake', load: async () => 'no fake hardware here' }] } });`,
    });
    const log = recordingLogger();
    const kernel = await createKernel({ backend: 'auto', configDir: dir, logger: log });
    expect(kernel.registries.backends.list()).to.deep.equal(['cpu', 'fake']);
    expect(log.infos).to.deep.equal(['backend: cpu (auto; skipped fake: no fake hardware here)']);
  });
});
