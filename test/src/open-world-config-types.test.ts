// Compiles configs with the TypeScript compiler API, as a user's editor would: plugins whose config types
// are in the program (declaration merging), plugins without declarations, and the README's plugin file.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import * as ts from 'typescript';
import { expect } from 'chai';
import { createKernel } from '@segkit/core';

const REPO = path.resolve(__dirname, '..', '..');
/** Virtual files live beside this test so that `@segkit/*` resolves through the repository's node_modules. */
const VIRTUAL_DIR = path.join(__dirname, '__open_world__');

/** The first ```ts block of the README's "Writing a plugin" section, verbatim. */
function readmePluginFile(): string {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Writing a plugin'));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('README.md: no ```ts block in "Writing a plugin"');
  return block[1]!;
}

const TYPED_PLUGINS = `import type {} from '@segkit/loss-cross-entropy';
import type {} from '@segkit/loss-dice';
import type {} from '@segkit/losses-extra';
import type {} from '@segkit/head-psp';
import type {} from '@segkit/optimizers';
import type {} from '@segkit/hooks-logging';
import type {} from './my-loss';
import { defineConfig } from '@segkit/core';
`;

/** Configs that must compile: declared types of several plugins next to types nobody declares here. */
const ACCEPTED = `${TYPED_PLUGINS}
export const mixed = defineConfig({
  _base_: '@segkit/configs/_base_/models/pspnet_r50-d8',
  plugins: ['./my-loss.ts', './soft-iou.ts', '@segkit/sampler-ohem'],
  model: {
    decode_head: {
      type: 'PSPHead',
      num_classes: 2,
      pool_scales: [1, 2, 3, 6],
      // sampler-ohem's types are not imported: its sampler has the generic shape.
      sampler: { type: 'OHEMPixelSampler', thresh: 0.7, min_kept: 100000 },
      loss_decode: [
        { type: 'CrossEntropyLoss', loss_weight: 1.0, class_weight: [0.8, 1.2] },
        { type: 'DiceLoss', loss_weight: 3.0, smooth: 1 },
        { type: 'MyLoss', loss_weight: 0.5, loss_name: 'loss_my' },
        { type: 'SoftIoULoss', smooth: 1e-6, whatever_it_takes: [1, 2] },
      ],
    },
    auxiliary_head: [{ type: 'FCNHead', in_channels: 1024, channels: 256 }, { type: 'MyHead', depth: 3 }],
  },
  optimizer: { type: 'SGD', lr: 0.01, momentum: 0.9, paramwise_cfg: { custom_keys: { head: { lr_mult: 10 } } } },
  log_config: { interval: 10, hooks: [{ type: 'TextLoggerHook', by_epoch: false }, { type: 'SlackHook', channel: '#runs' }] },
  runner: { max_iters: 40 },
});

// A partial override of a base: no \`type\`, so any options.
export const override = defineConfig({ model: { decode_head: { loss_decode: { loss_weight: 2 } } } });

// Configs built from helpers: the inferred types are checked the same way.
const losses = (weight: number) => [{ type: 'CrossEntropyLoss' as const, loss_weight: weight }, { type: 'FocalLoss' as const, gamma: 2 }];
export const fromHelper = defineConfig({ model: { decode_head: { loss_decode: losses(1) } } });
`;

/** Wrong options of declared types; each line ends with the text its diagnostic must contain. */
const REJECTED = `${TYPED_PLUGINS}
export const a = defineConfig({ model: { decode_head: { loss_decode: { type: 'CrossEntropyLoss', loss_wieght: 1 } } } }); // NotAnOption<"loss_wieght", "CrossEntropyLoss">
export const b = defineConfig({ model: { decode_head: { loss_decode: [{ type: 'SoftIoULoss' }, { type: 'DiceLoss', smoth: 1 }] } } }); // NotAnOption<"smoth", "DiceLoss">
export const c = defineConfig({ model: { decode_head: { loss_decode: { type: 'MyLoss', loss_weight: 'heavy' } } } }); // Type 'string' is not assignable to type 'never'
export const d = defineConfig({ model: { decode_head: { type: 'PSPHead', pool_scale: [1, 2] } } }); // NotAnOption<"pool_scale", "PSPHead">
export const e = defineConfig({ optimizer: { type: 'SGD', lr: 0.01, momentun: 0.9 } }); // NotAnOption<"momentun", "SGD">
export const f = defineConfig({ log_config: { hooks: [{ type: 'SlackHook', x: 1 }, { type: 'TextLoggerHook', by_epok: false }] } }); // NotAnOption<"by_epok", "TextLoggerHook">
export const g = defineConfig({ optimiser: { type: 'SGD' }, runner: { max_iters: 1 } }); // NotAKey<"optimiser">
export const h = defineConfig({ model: { decod_head: { type: 'PSPHead' } } }); // 'decod_head' does not exist in type 'ModelConfig'
export const i = defineConfig({ runner: { max_iters: 'many' } }); // Type 'string' is not assignable to type 'number'
export const j = (x: import('@tensorflow/tfjs-core').Tensor) => x.mul(2); // Property 'mul' does not exist on type 'Tensor<Rank>'
`;

const OPTIONS: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    esModuleInterop: true,
    skipLibCheck: true,
    types: ['node'],
    typeRoots: [path.join(REPO, 'node_modules', '@types')],
};

function compile(files: Record<string, string>): readonly ts.Diagnostic[] {
  const options = OPTIONS;
  const virtual = new Map(Object.entries(files).map(([name, text]) => [path.join(VIRTUAL_DIR, name), text]));
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile, directoryExists } = host;
  host.fileExists = (file) => virtual.has(file) || fileExists(file);
  host.directoryExists = (dir) => dir === VIRTUAL_DIR || (directoryExists?.(dir) ?? fs.existsSync(dir));
  host.readFile = (file) => virtual.get(file) ?? readFile(file);
  host.getSourceFile = (file, languageVersion, onError) => {
    const text = virtual.get(file);
    return text === undefined ? getSourceFile(file, languageVersion, onError) : ts.createSourceFile(file, text, languageVersion, true);
  };
  const program = ts.createProgram([...virtual.keys()], options, host);
  return ts.getPreEmitDiagnostics(program);
}

function describeDiagnostic(diagnostic: ts.Diagnostic): { file: string; line: number; message: string } {
  const line = diagnostic.file && diagnostic.start !== undefined ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line + 1 : 0;
  return { file: diagnostic.file ? path.basename(diagnostic.file.fileName) : '', line, message: ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n') };
}

describe('defineConfig: open-world config types (TypeScript compiler API)', function () {
  // Loads core's and a few plugins' declaration files: several seconds on a loaded machine.
  this.timeout(300000);
  let diagnostics: { file: string; line: number; message: string }[];

  before(() => {
    diagnostics = compile({ 'my-loss.ts': readmePluginFile(), 'accepted.ts': ACCEPTED, 'rejected.ts': REJECTED }).map(describeDiagnostic);
  });

  it("accepts declared types of several plugins together, types nobody declares, and the README's plugin file", () => {
    expect(diagnostics.filter((d) => d.file !== 'rejected.ts')).to.deep.equal([]);
  });

  it('reports a wrong option of a declared type at its line, and nothing on the other lines', () => {
    const lines = REJECTED.split('\n');
    const expected = lines.flatMap((text, index) => {
      const marker = / \/\/ (.*)$/.exec(text);
      return text.startsWith('export const') && marker ? [{ line: index + 1, text: marker[1]! }] : [];
    });
    expect(expected).to.have.length(10);
    const rejected = diagnostics.filter((d) => d.file === 'rejected.ts');
    expect(rejected.map((d) => d.line)).to.deep.equal(expected.map((e) => e.line));
    for (const [index, { text }] of expected.entries()) expect(rejected[index]!.message, `line ${expected[index]!.line}`).to.include(text);
  });
});

/** What an editor offers at each `|` in `text` (the markers removed), with the README's plugin file beside it. */
function completionsAt(text: string): string[][] {
  const file = path.join(VIRTUAL_DIR, 'editing.ts');
  const parts = text.split('|');
  const positions = parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('').length);
  const files = new Map([[file, parts.join('')], [path.join(VIRTUAL_DIR, 'my-loss.ts'), readmePluginFile()]]);
  const read = (name: string) => files.get(name) ?? (fs.existsSync(name) ? fs.readFileSync(name, 'utf8') : undefined);
  const host: ts.LanguageServiceHost = {
    getScriptFileNames: () => [...files.keys()],
    getScriptVersion: () => '1',
    getScriptSnapshot: (name) => {
      const content = read(name);
      return content === undefined ? undefined : ts.ScriptSnapshot.fromString(content);
    },
    getCurrentDirectory: () => REPO,
    getCompilationSettings: () => OPTIONS,
    getDefaultLibFileName: (options) => ts.getDefaultLibFilePath(options),
    fileExists: (name) => read(name) !== undefined,
    readFile: read,
    directoryExists: (dir) => dir === VIRTUAL_DIR || fs.existsSync(dir),
    getDirectories: (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name) : []),
  };
  const service = ts.createLanguageService(host);
  try {
    return positions.map((position) => (service.getCompletionsAtPosition(file, position, {})?.entries ?? []).map((entry) => entry.name));
  } finally {
    service.dispose();
  }
}

describe('defineConfig: completion in an editor (TypeScript language service)', function () {
  this.timeout(300000);

  it('completes the declared type names, the options of a declared type and the config keys', () => {
    const [names, options, keys] = completionsAt(`${TYPED_PLUGINS}
export const a = defineConfig({ model: { decode_head: { loss_decode: [{ type: '|' }] } } });
export const b = defineConfig({ model: { decode_head: { loss_decode: { type: 'DiceLoss', | } } } });
export const c = defineConfig({ model: { | } });
`);
    expect(names).to.include.members(['CrossEntropyLoss', 'DiceLoss', 'FocalLoss', 'LovaszLoss', 'TverskyLoss', 'MyLoss']);
    expect(options).to.have.members(['_delete_', 'smooth', 'exponent', 'class_weight', 'loss_weight', 'ignore_index', 'loss_name', 'reduction']);
    expect(keys).to.include.members(['backbone', 'decode_head', 'auxiliary_head', 'test_cfg']);
  });
});

describe("README's plugin file at run time", () => {
  it('computes MMSegmentation\'s MyLoss by hand and leaks no tensor', async () => {
    // Inside the repository, so that the file's own imports (@tensorflow/tfjs-core) resolve as in a user's project.
    const dir = fs.mkdtempSync(path.join(__dirname, 'readme-plugin-'));
    try {
      fs.writeFileSync(path.join(dir, 'my-loss.ts'), readmePluginFile());
      const kernel = await createKernel({ plugins: ['./my-loss.ts'], configDir: dir, backend: 'cpu', logger: { info: () => undefined, warn: () => undefined } });
      const before = tf.memory().numTensors;
      const loss = kernel.build('losses', { type: 'MyLoss', loss_weight: 2 }, { path: 'loss' });
      // Pixel 0: logits (0, 0) → p (0.5, 0.5), label 0: mean |p - onehot| = 0.5.
      // Pixel 1: logits (ln 3, 0) → p (0.75, 0.25), label 255: ignored.
      // Pixel 2: logits (0, ln 3) → p (0.25, 0.75), label 1: mean = 0.25.
      // mean over the 2 valid pixels = 0.375, × loss_weight 2 = 0.75; with weight (1, 1, 3): (0.5 + 0.75) / 2 × 2 = 1.25.
      const logits = tf.tensor4d([0, 0, Math.log(3), 0, 0, Math.log(3)], [1, 1, 3, 2]);
      const labels = tf.tensor3d([[[0, 255, 1]]], [1, 1, 3], 'int32');
      const weight = tf.tensor3d([[[1, 1, 3]]], [1, 1, 3]);
      const plain = loss.forward(logits, labels, { ignoreIndex: 255 });
      const weighted = loss.forward(logits, labels, { ignoreIndex: 255, weight });
      const unreduced = loss.forward(logits, labels, { ignoreIndex: 255, reductionOverride: 'none' });
      expect((await plain.data())[0]).to.be.closeTo(0.75, 1e-6);
      expect((await weighted.data())[0]).to.be.closeTo(1.25, 1e-6);
      expect(Array.from(await unreduced.data())).to.have.length(3);
      Array.from(await unreduced.data()).forEach((value, i) => expect(value).to.be.closeTo([1, 0, 0.5][i]!, 1e-6));
      expect(loss.lossName).to.equal('loss_my');
      tf.dispose([logits, labels, weight, plain, weighted, unreduced]);
      expect(tf.memory().numTensors).to.equal(before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
