import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { z } from 'zod';
import {
  REGISTRY_NAMES,
  SegkitError,
  applyOverrides,
  createKernel,
  definePlugin,
  describeValue,
  loadConfig,
  plotLogCurves,
  validateOptions,
  type ComponentDefinition,
  type PluginComponents,
} from '../src';
import { describeOsError, makeDirectory, writeFileOrExplain } from '../src/os-errors';
import { errorMessage, recordingLogger, tempTree } from '../src/testing';
import { formatValue } from '../src/config/validation';
import { parseOverrideValue } from '../src/config/loader';

const logger = recordingLogger();

describe('config checks: numbers as written', () => {
  it('describeValue and formatValue print Infinity, -Infinity and NaN, never JSON null', () => {
    expect(describeValue(Infinity)).to.equal('Infinity');
    expect(describeValue(-Infinity)).to.equal('-Infinity');
    expect(describeValue(NaN)).to.equal('NaN');
    expect(describeValue(1e21)).to.equal('1e+21');
    expect(describeValue(-0)).to.equal('-0');
    expect(describeValue([1, Infinity, NaN])).to.equal('[1,Infinity,NaN]');
    expect(describeValue('abc')).to.equal('"abc"');
    expect(describeValue(null)).to.equal('null');
    expect(describeValue(undefined)).to.equal('nothing');
    expect(describeValue({ a: 1 })).to.equal('an object');
    expect(describeValue(Array.from({ length: 9 }, (_, i) => i))).to.equal('a list of 9');
    expect(formatValue({ crop_size: [Infinity, 32], stride: undefined, mode: 'slide' })).to.equal('{"crop_size":[Infinity,32],"stride":undefined,"mode":"slide"}');
    expect(formatValue(undefined)).to.equal('undefined');
    expect(formatValue('x'.repeat(200), 20)).to.equal(`"${'x'.repeat(16)}...`);
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    expect(formatValue(circular)).to.equal('{"a":1,"self":(circular)}');
  });

  it('--cfg-options 1e9999 is Infinity and the error says so (was "got null")', () => {
    expect(parseOverrideValue('1e9999')).to.equal(Infinity);
    expect(parseOverrideValue('-1e9999')).to.equal(-Infinity);
    const config = applyOverrides({ runner: { max_iters: 10 } }, ['runner.max_iters=1e9999', 'runner.crop=[1e9999,32]']);
    const schema = z.object({ max_iters: z.number().int().positive(), crop: z.array(z.number()) });
    expect(() => validateOptions(schema, config.runner, 'runner', 'IterBasedRunner')).to.throw(
      SegkitError,
      'runner.max_iters: expected number, got Infinity\nrunner.crop.0: expected number, got Infinity',
    );
  });

  it('a component schema rejects Infinity and NaN where a finite number or an integer is expected', async () => {
    const definition: ComponentDefinition = {
      type: 'Sampler',
      schema: z.object({ thresh: z.number().gt(0).lt(1).nullable().default(null), min_kept: z.number().int().positive().default(10) }),
      create: (options) => options as never,
    };
    const kernel = await createKernel({ plugins: [definePlugin({ name: 'finite', version: '0.0.1', components: { samplers: [definition as ComponentDefinition<object, never>] } })], backend: 'cpu', logger });
    expect(await errorMessage(() => kernel.build('samplers', { type: 'Sampler', min_kept: Infinity }, { path: 'model.decode_head.sampler' }))).to.equal(
      'model.decode_head.sampler.min_kept: expected number, got Infinity',
    );
    expect(await errorMessage(() => kernel.build('samplers', { type: 'Sampler', thresh: NaN }, { path: 'model.decode_head.sampler' }))).to.equal(
      'model.decode_head.sampler.thresh: expected number, got NaN',
    );
    expect(await errorMessage(() => kernel.build('samplers', { type: 'Sampler', thresh: -Infinity }, { path: 'model.decode_head.sampler' }))).to.equal(
      'model.decode_head.sampler.thresh: expected number, got -Infinity',
    );
  });
});

describe('config checks: syntax errors name file:line:column', () => {
  let dir: string;
  before(() => {
    dir = tempTree({
      'bad.ts': 'export default {\n  model: { type: "X" ,, },\n};\n',
      'types.ts': 'const lr: number = ;\nexport default { lr };\n',
      'bad.js': 'module.exports = {\n  a: 1\n  b: 2,\n};\n',
      'bad.cjs': 'module.exports = {\n\tseed: )\n};\n',
      'bad.mjs': 'export default {\n  a: 1\n  b: 2,\n};\n',
      'bad.json': '{\n  "a": 1,\n  "b" 2\n}\n',
      'cut.json': '{\n  "a": 1,\n',
      'runtime.js': 'module.exports = { a: JSON.parse("{") };\n',
      'runtime.ts': 'export default { a: JSON.parse("{") };\n',
      'child.ts': "export default { _base_: './bad.js' };\n",
      'broken-plugin.ts': "import { definePlugin } from '@segkit/core';\nexport const plugin = definePlugin({ name: 'x', version: '0.0.1', components: { hooks: [ }) });\n",
      'broken-plugin.js': "exports.plugin = {\n  name: 'x',\n  version: '0.0.1'\n  module: null };\n",
    });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const at = (name: string) => path.join(dir, name);

  it('TypeScript (jiti): 1-based line and column, and the unexpected text', async () => {
    expect(await errorMessage(() => loadConfig(at('bad.ts')))).to.equal(`config: ${at('bad.ts')}:2:23: syntax error: Unexpected token at ', },'`);
    expect(await errorMessage(() => loadConfig(at('types.ts')))).to.equal(`config: ${at('types.ts')}:1:20: syntax error: Unexpected token at ';'`);
  });

  it('JavaScript: CommonJS, .cjs and ES modules (which Node reports without a location)', async () => {
    expect(await errorMessage(() => loadConfig(at('bad.js')))).to.equal(`config: ${at('bad.js')}:3:3: syntax error: Unexpected identifier 'b'`);
    expect(await errorMessage(() => loadConfig(at('bad.cjs')))).to.equal(`config: ${at('bad.cjs')}:2:8: syntax error: Unexpected token ')'`);
    expect(await errorMessage(() => loadConfig(at('bad.mjs')))).to.equal(`config: ${at('bad.mjs')}:3:3: syntax error: Unexpected identifier 'b'`);
  });

  it('JSON: the position becomes line and column; a cut file points past its last line', async () => {
    expect(await errorMessage(() => loadConfig(at('bad.json')))).to.match(new RegExp(`^config: ${escape(at('bad.json'))}:3:7: syntax error: [^\\n]+$`));
    expect(await errorMessage(() => loadConfig(at('cut.json')))).to.match(new RegExp(`^config: ${escape(at('cut.json'))}:3:1: syntax error: [^\\n]+$`));
  });

  it('a syntax error in a _base_ names the base file', async () => {
    expect(await errorMessage(() => loadConfig(at('child.ts')))).to.equal(`config: ${at('bad.js')}:3:3: syntax error: Unexpected identifier 'b'`);
  });

  it('a SyntaxError thrown while the config runs is not given a made-up location', async () => {
    expect(await errorMessage(() => loadConfig(at('runtime.js')))).to.match(new RegExp(`^config: ${escape(at('runtime.js'))} could not be read: [^\\n]*JSON`));
    expect(await errorMessage(() => loadConfig(at('runtime.ts')))).to.match(new RegExp(`^config: ${escape(at('runtime.ts'))} could not be read: [^\\n]*JSON`));
  });

  it('plugin files: the same one-line location', async () => {
    expect(await errorMessage(() => createKernel({ plugins: [at('broken-plugin.ts')], backend: 'cpu', logger }))).to.equal(
      `plugins: plugin '${at('broken-plugin.ts')}' failed to load: ${at('broken-plugin.ts')}:2:90: syntax error: Unexpected token at '}) });'`,
    );
    expect(await errorMessage(() => createKernel({ plugins: [at('broken-plugin.js')], backend: 'cpu', logger }))).to.equal(
      `plugins: plugin '${at('broken-plugin.js')}' failed to load: ${at('broken-plugin.js')}:4:3: syntax error: Unexpected identifier 'module'`,
    );
  });
});

describe('config checks: OS errors on paths', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempTree({ 'a-file': 'x', 'log.json': '{"mode": "train", "iter": 1, "loss": 0.5}\n{"mode": "train", "iter": 2, "loss": 0.25}\n' });
    fs.mkdirSync(path.join(dir, 'a-folder'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a folder that is a file (EEXIST) or below a file (ENOTDIR) names the file in the way', async () => {
    const file = path.join(dir, 'a-file');
    expect(await errorMessage(() => makeDirectory(file, 'work_dir'))).to.equal(`work_dir: cannot create ${file}: ${file} is a file, not a folder (EEXIST)`);
    expect(await errorMessage(() => makeDirectory(path.join(file, 'x', 'y'), '--out'))).to.equal(
      `--out: cannot create ${path.join(file, 'x', 'y')}: ${file} is a file, not a folder (ENOTDIR)`,
    );
    makeDirectory(path.join(dir, 'new', 'deep'), 'work_dir');
    expect(fs.statSync(path.join(dir, 'new', 'deep')).isDirectory()).to.equal(true);
  });

  it('writing onto a folder (EISDIR); other codes keep Node’s reason without the syscall', async () => {
    const folder = path.join(dir, 'a-folder');
    expect(await errorMessage(() => writeFileOrExplain(folder, 'x', 'work_dir'))).to.equal(`work_dir: cannot write ${folder}: ${folder} is a folder (EISDIR)`);
    const denied = Object.assign(new Error("EACCES: permission denied, open '/x/y'"), { code: 'EACCES' });
    expect(describeOsError(denied, '/x/y')).to.equal('EACCES: permission denied');
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: 'ENOSPC' });
    expect(describeOsError(full, '/x/y')).to.equal('ENOSPC: no space left on device, write');
  });

  it('segkit plot --out below a file is a SegkitError naming the path', async () => {
    const out = path.join(dir, 'a-file', 'curves.svg');
    const message = await errorMessage(() => plotLogCurves(path.join(dir, 'log.json'), { keys: ['loss'], out }));
    expect(message).to.equal(`--out: cannot create ${path.join(dir, 'a-file')}: ${path.join(dir, 'a-file')} is a file, not a folder (EEXIST)`);
  });
});

describe('config checks: a component whose factory throws', () => {
  class Exploding {
    constructor() {
      throw new TypeError("Cannot read properties of undefined (reading 'shape')\n    at Exploding (plugin.ts:3:9)");
    }
  }
  const exploding = (type: string): ComponentDefinition<object, never> => ({ type, schema: z.object({}), create: () => new Exploding() as never });

  it('every registry (backends build providers, not configs): a plain Error becomes "<path>: <type> failed to build: <message>" (first line only)', async () => {
    for (const registry of REGISTRY_NAMES.filter((name) => name !== 'backends')) {
      const components = { [registry]: [exploding(`Broken_${registry}`)] } as PluginComponents;
      const kernel = await createKernel({ plugins: [definePlugin({ name: `broken-${registry}`, version: '0.0.1', components })], backend: 'cpu', logger });
      const build = kernel.build as (r: string, c: unknown, o: { path: string; parent?: unknown }) => unknown;
      let thrown: unknown;
      try {
        build.call(kernel, registry, { type: `Broken_${registry}` }, { path: `custom_hooks.3`, parent: { logInterval: 1 } });
      } catch (error) {
        thrown = error;
      }
      expect(thrown, registry).to.be.instanceOf(SegkitError);
      expect((thrown as SegkitError).message).to.equal(`custom_hooks.3: Broken_${registry} failed to build: Cannot read properties of undefined (reading 'shape')`);
      expect((thrown as SegkitError).configPath).to.equal('custom_hooks.3');
      expect((thrown as SegkitError).cause).to.be.instanceOf(TypeError);
    }
  });

  it('a SegkitError passes unchanged; a child failing inside its parent is named by the child path; non-Error throws too', async () => {
    const components: PluginComponents = {
      hooks: [
        { type: 'Careful', schema: z.object({}), create: () => { throw new SegkitError('custom_hooks.0.level: expected 1..3, got 7', 'custom_hooks.0.level'); } },
        { type: 'Thrower', schema: z.object({}), create: () => { throw 'not an Error'; } },
      ],
      heads: [{ type: 'Parent', schema: z.object({ loss: z.unknown() }), create: (options, ctx) => ctx.build('losses', options.loss, 'loss_decode') as never }],
      losses: [exploding('BadLoss')],
    };
    const kernel = await createKernel({ plugins: [definePlugin({ name: 'mixed', version: '0.0.1', components })], backend: 'cpu', logger });
    expect(await errorMessage(() => kernel.build('hooks', { type: 'Careful' }, { path: 'custom_hooks.0', parent: { logInterval: 1 } }))).to.equal('custom_hooks.0.level: expected 1..3, got 7');
    expect(await errorMessage(() => kernel.build('hooks', { type: 'Thrower' }, { path: 'custom_hooks.1', parent: { logInterval: 1 } }))).to.equal(
      'custom_hooks.1: Thrower failed to build: not an Error',
    );
    expect(await errorMessage(() => kernel.build('heads', { type: 'Parent', loss: { type: 'BadLoss' } }, { path: 'model.decode_head' } as never))).to.equal(
      "model.decode_head.loss_decode: BadLoss failed to build: Cannot read properties of undefined (reading 'shape')",
    );
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
