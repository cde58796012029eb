// `@segkit/core/runtime`, the model plugins, the losses and the pixel transforms bundle for browsers:
// esbuild with platform 'browser' must resolve every import without a Node built-in. The whole
// `@segkit/core` (CLI, files, images) must not, which shows the check can fail.
import * as path from 'path';
import { builtinModules } from 'module';
import { expect } from 'chai';

const root = path.resolve(__dirname, '..', '..');
const NODE_BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

const BROWSER_ENTRY = `
export * from '@segkit/core/runtime';
export { plugin as resnet } from '@segkit/backbone-resnet';
export { plugin as unet } from '@segkit/backbone-unet';
export { plugin as fcn } from '@segkit/head-fcn';
export { plugin as psp } from '@segkit/head-psp';
export { plugin as crossEntropy } from '@segkit/loss-cross-entropy';
export { plugin as dice } from '@segkit/loss-dice';
export { plugin as extraLosses } from '@segkit/losses-extra';
export { plugin as transforms } from '@segkit/transforms/runtime';
export * from '@segkit/web';
`;

/** Node built-ins that a browser bundle of `contents` would need: esbuild's unresolved imports and any import of one. */
async function nodeImportsOfBrowserBundle(contents: string): Promise<string[]> {
  const esbuild = await import('esbuild');
  try {
    const result = await esbuild.build({ stdin: { contents, resolveDir: root, loader: 'js' }, bundle: true, platform: 'browser', format: 'esm', write: false, metafile: true, logLevel: 'silent' });
    const found: string[] = [];
    for (const [file, input] of Object.entries(result.metafile.inputs)) {
      for (const imported of input.imports) if (NODE_BUILTINS.has(imported.path)) found.push(`${file} imports ${imported.path}`);
    }
    return found;
  } catch (error) {
    const failure = error as { errors?: { text: string; location?: { file: string } | null }[] };
    if (!failure.errors) throw error;
    return failure.errors.map((e) => `${e.location?.file ?? '?'}: ${e.text}`);
  }
}

describe('browser bundle of the runtime (esbuild, platform browser)', function () {
  this.timeout(120_000);

  it('@segkit/core/runtime + backbone-resnet/unet, head-fcn/psp, the losses, the pixel transforms and @segkit/web need no Node built-in', async () => {
    expect(await nodeImportsOfBrowserBundle(BROWSER_ENTRY)).to.deep.equal([]);
  });

  it('the whole @segkit/core does (fs, path, child_process, ...): the check sees them', async () => {
    const problems = await nodeImportsOfBrowserBundle(`export * from '@segkit/core';`);
    expect(problems.some((p) => /Could not resolve "(fs|path|child_process|worker_threads)"/.test(p)), problems.slice(0, 3).join('\n')).to.equal(true);
  });
});
