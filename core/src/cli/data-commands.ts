import * as path from 'path';
import { addCommands } from './main';
import { SegkitError } from '../errors';

/** The data tools live in @segkit/datasets; core loads it on demand so that core depends on no plugin. */
function datasetsPackage(): Record<string, (...args: any[]) => Promise<Record<string, unknown>>> {
  for (const base of [process.cwd(), __dirname]) {
    try {
      return require(require.resolve('@segkit/datasets', { paths: [base] }));
    } catch {
      // try the next base folder
    }
  }
  throw new SegkitError('this command needs the @segkit/datasets plugin: npm install @segkit/datasets');
}

function integer(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed)) throw new SegkitError(`${name}: expected an integer, got '${value}'`);
    return parsed;
  };
}

addCommands((program) => {
  const synth = program.command('synth').description('generate a synthetic dataset (no download needed)');
  for (const [kind, fn, defaultOut] of [
    ['drive', 'synthDrive', 'data/synthetic_drive'],
    ['cityscapes', 'synthCityscapes', 'data/synthetic_cityscapes'],
  ] as const) {
    synth
      .command(kind)
      .description(`write a ${kind === 'drive' ? 'DRIVE' : 'Cityscapes'}-layout dataset of generated images with exact labels`)
      .option('--out <dir>', 'output folder', defaultOut)
      .option('--count <n>', 'training images (validation: half as many)', integer('--count'))
      .option('--size <hw...>', 'image height and width')
      .option('--seed <n>', 'random seed', integer('--seed'))
      .action(async (options: { out: string; count?: number; size?: string[]; seed?: number }) => {
        const size = options.size?.map(integer('--size')) as [number, number] | undefined;
        const summary = await datasetsPackage()[fn]!({ out: path.resolve(options.out), count: options.count, size, seed: options.seed });
        console.log(`wrote ${summary.train} training and ${summary.val} validation images of ${(summary.size as number[]).join('x')} to ${summary.out}`);
      });
  }

  const convert = program.command('convert').description("convert an official dataset release into MMSegmentation's layout");
  convert
    .command('drive <trainingZip> <testZip>')
    .description('DRIVE training.zip + test.zip → images/{training,validation}, annotations/{training,validation}')
    .option('--out <dir>', 'output folder', 'data/DRIVE')
    .action(async (trainingZip: string, testZip: string, options: { out: string }) => {
      const summary = await datasetsPackage().convertDrive!(trainingZip, testZip, options.out);
      console.log(JSON.stringify(summary.written));
    });
  convert
    .command('cityscapes <root>')
    .description('render *_gtFine_polygons.json to *_gtFine_labelTrainIds.png and write train.txt / val.txt')
    .option('--out <dir>', 'output folder (default: the dataset root)')
    .action(async (root: string, options: { out?: string }) => {
      const summary = await datasetsPackage().convertCityscapes!(root, options.out ?? root);
      console.log(JSON.stringify(summary.written));
    });
});
