import * as path from 'path';
import { SegkitError, startProgress, type CliContribution, type Progress } from '@segkit/core';
import { synthCityscapes, synthDrive } from './synth';
import { convertCityscapes, convertDrive } from './convert';
import { checkDataset, formatDatasetCheck } from './check-dataset';

function integer(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed)) throw new SegkitError(`${name}: expected an integer, got '${value}'`);
    return parsed;
  };
}

/** One progress (bar or lines) per stage of a converter (DRIVE: training, then validation). */
function stagedProgress(label: string, quiet: boolean | undefined): { onProgress(done: number, total: number, stage: string): void; stop(): void } {
  let current: { stage: string; progress: Progress } | undefined;
  return {
    onProgress(done, total, stage) {
      if (current?.stage !== stage) {
        current?.progress.stop();
        current = { stage, progress: startProgress({ label: `${label} (${stage})`, total, unit: 'files', quiet }) };
      }
      current.progress.update(done);
    },
    stop() {
      current?.progress.stop();
    },
  };
}

/**
 * `segkit synth drive|cityscapes`, `segkit convert drive|cityscapes` and `segkit check-dataset` (declared in
 * package.json's `segkit.commands`).
 */
export const datasetCommands: CliContribution = {
  commands: ['synth', 'convert', 'check-dataset'],
  install(program, services) {
    program
      .command('check-dataset <config>')
      .description('scan a dataset before training: decodability, image/label sizes, label values, pixels per class')
      .option('--split <name>', 'data.<split> to check', 'train')
      .option('--max-problems <n>', 'problems listed with file names', integer('--max-problems'), 20)
      .option('--quiet', 'no progress bar or progress lines')
      .action(async (file: string, options: { split: string; maxProblems: number; quiet?: boolean }) => {
        const { config, kernel } = await services.loadConfigAndKernel(file, { backend: 'cpu' });
        const cfg = (config.data as Record<string, unknown> | undefined)?.[options.split];
        if (!cfg) throw new SegkitError(`data.${options.split}: not in the config`, `data.${options.split}`);
        const dataset = kernel.build('datasets', cfg, { path: `data.${options.split}` });
        const progress = startProgress({ label: `check-dataset data.${options.split}`, total: dataset.length, unit: 'images', quiet: options.quiet });
        let summary: Awaited<ReturnType<typeof checkDataset>>;
        try {
          summary = await checkDataset(dataset, { maxProblems: options.maxProblems, onProgress: (done) => progress.update(done) });
        } finally {
          progress.stop();
        }
        console.log(formatDatasetCheck(summary));
        if (!summary.ok) throw new SegkitError(`check-dataset: ${summary.totalProblems} problem(s) in data.${options.split}`);
      });

    const synth = program.command('synth').description('generate a synthetic dataset (no download needed)');
    for (const [kind, generate, defaultOut, defaults] of [
      ['drive', synthDrive, 'data/synthetic_drive', { count: 20, size: '128 128' }],
      ['cityscapes', synthCityscapes, 'data/synthetic_cityscapes', { count: 8, size: '128 256' }],
    ] as const) {
      synth
        .command(kind)
        .description(`write a ${kind === 'drive' ? 'DRIVE' : 'Cityscapes'}-layout dataset of generated images with exact labels`)
        .option('--out <dir>', 'output folder', defaultOut)
        .option('--count <n>', `training images, validation half as many (default: ${defaults.count})`, integer('--count'))
        .option('--size <hw...>', `image height and width (default: ${defaults.size})`)
        .option('--seed <n>', 'random seed', integer('--seed'), 0)
        .option('--quiet', 'no progress bar or progress lines')
        .action(async (options: { out: string; count?: number; size?: string[]; seed?: number; quiet?: boolean }) => {
          const size = options.size?.map(integer('--size')) as [number, number] | undefined;
          let progress: Progress | undefined;
          const onProgress = (done: number, total: number) => {
            progress ??= startProgress({ label: `synth ${kind}`, total, unit: 'images', quiet: options.quiet });
            progress.update(done);
          };
          let summary: Awaited<ReturnType<typeof generate>>;
          try {
            summary = await generate({ out: path.resolve(options.out), count: options.count, size, seed: options.seed, onProgress });
          } finally {
            progress?.stop();
          }
          console.log(`wrote ${summary.train} training and ${summary.val} validation images of ${summary.size.join('x')} to ${summary.out}`);
        });
    }

    // Core has a `convert` group already (`convert config`): add the dataset converters to it.
    const convert = program.commands.find((command) => command.name() === 'convert') ?? program.command('convert').description("convert an official dataset release into MMSegmentation's layout");
    convert
      .command('drive <trainingZip> <testZip>')
      .description('DRIVE training.zip + test.zip → images/{training,validation}, annotations/{training,validation}')
      .option('--out <dir>', 'output folder', 'data/DRIVE')
      .option('--quiet', 'no progress bar or progress lines')
      .action(async (trainingZip: string, testZip: string, options: { out: string; quiet?: boolean }) => {
        const stages = stagedProgress('convert drive', options.quiet);
        try {
          const summary = await convertDrive(trainingZip, testZip, options.out, { onProgress: stages.onProgress });
          stages.stop();
          console.log(JSON.stringify(summary.written));
        } finally {
          stages.stop();
        }
      });
    convert
      .command('cityscapes <root>')
      .description('render *_gtFine_polygons.json to *_gtFine_labelTrainIds.png and write train.txt / val.txt')
      .option('--out <dir>', 'output folder (default: the dataset root)')
      .option('--quiet', 'no progress bar or progress lines')
      .action(async (root: string, options: { out?: string; quiet?: boolean }) => {
        const stages = stagedProgress('convert cityscapes', options.quiet);
        try {
          const summary = await convertCityscapes(root, options.out ?? root, { onProgress: stages.onProgress });
          stages.stop();
          console.log(JSON.stringify(summary.written));
        } finally {
          stages.stop();
        }
      });
  },
};
