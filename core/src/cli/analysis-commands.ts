import * as fs from 'fs';
import * as path from 'path';
import type { Command } from 'commander';
import { SegkitError } from '../errors';
import { configSection, initSegmentor, loadConfigAndKernel } from '../apis/segmentor';
import { svgToPng } from '../io/image';
import { SeededRandom } from '../data/random';
import { confusionMatrixCsv, confusionMatrixOfTestSplit, renderConfusionMatrixSvg } from '../tools/confusion-matrix';
import { browseDataset } from '../tools/browse-dataset';
import { analyzeLogs, calTrainTime, formatTrainTime } from '../tools/analyze-logs';
import { benchmarkInference, benchmarkTraining, formatBenchmark, type InferenceTiming } from '../tools/benchmark';
import { integerOption, quietLogger, withCommon, type CommonOptions } from './options';

/** A parser for an integer option with a lower bound, naming the option in its error. */
function atLeast(name: string, minimum: number): (value: string) => number {
  const parseInteger = integerOption(name);
  return (value) => {
    const parsed = parseInteger(value);
    if (parsed < minimum) throw new SegkitError(`${name}: expected an integer of at least ${minimum}, got ${parsed}`);
    return parsed;
  };
}

function opacityOption(value: string): number {
  const parsed = Number(value);
  if (!(parsed > 0 && parsed <= 1)) throw new SegkitError(`--opacity: expected a number in (0, 1], got '${value}'`);
  return parsed;
}

/** The training benchmark rebuilds the config: its warnings were printed once already. */
const silentLogger = { info: () => undefined, warn: () => undefined };

function requireFile(file: string, what: string): void {
  if (!fs.existsSync(file)) throw new SegkitError(`${what}: file not found: ${file}`);
}

/** `confusion-matrix`, `browse-dataset`, `analyze-logs` and `benchmark` (MMSegmentation's tools/ for looking at data, models and runs). */
export function installAnalysisCommands(program: Command): void {
  withCommon(
    program
      .command('confusion-matrix <config> <checkpoint>')
      .description('confusion matrix over the test split (MMSegmentation tools/confusion_matrix.py): CSV and a normalized PNG'),
  )
    .option('--out <dir>', 'output folder for confusion_matrix.csv and confusion_matrix.png', '.')
    .option('--normalize', 'write row percentages (of each ground-truth class) to the CSV instead of pixel counts; the PNG is always normalized')
    .option('--title <title>', 'figure title', 'Normalized Confusion Matrix')
    .action(async (file: string, checkpointFile: string, options: CommonOptions & { out: string; normalize?: boolean; title: string }) => {
      requireFile(checkpointFile, 'checkpoint');
      const handle = await initSegmentor(file, checkpointFile, { ...options, logger: quietLogger });
      try {
        const { matrix, classNames } = await confusionMatrixOfTestSplit(handle);
        fs.mkdirSync(options.out, { recursive: true });
        const percentages = matrix.normalized();
        const csvFile = path.join(options.out, 'confusion_matrix.csv');
        fs.writeFileSync(csvFile, confusionMatrixCsv(options.normalize ? percentages : matrix.counts, classNames, { percentages: options.normalize === true }));
        const pngFile = path.join(options.out, 'confusion_matrix.png');
        fs.writeFileSync(pngFile, await svgToPng(renderConfusionMatrixSvg(percentages, classNames, { title: options.title })));
        console.log(`wrote ${csvFile} (${options.normalize ? 'row percentages' : 'pixel counts'}) and ${pngFile}`);
      } finally {
        handle.dispose();
      }
    });

  withCommon(
    program
      .command('browse-dataset <config>')
      .description("write the split's pipeline outputs (after crop, flip, photometric distortion) with the labels overlaid and a legend (MMSegmentation tools/browse_dataset.py)"),
  )
    .requiredOption('--out <dir>', 'output folder for the PNGs')
    .option('--split <split>', "'train' or 'val'", 'train')
    .option('--count <n>', 'number of samples to write', atLeast('--count', 1), 8)
    .option('--seed <n>', 'seed of the random transforms', integerOption('--seed'), 0)
    .option('--opacity <x>', 'label colour weight in (0, 1]', opacityOption, 0.5)
    .option('--zoom <n>', 'enlarge each sample by this integer factor (nearest neighbour)', atLeast('--zoom', 1), 1)
    .action(async (file: string, options: CommonOptions & { out: string; split: string; count: number; seed: number; opacity: number; zoom: number }) => {
      if (options.split !== 'train' && options.split !== 'val') throw new SegkitError(`--split: expected 'train' or 'val', got '${options.split}'`);
      const { config, kernel } = await loadConfigAndKernel(file, { ...options, backend: options.backend ?? 'cpu', logger: quietLogger });
      const data = configSection(config, 'data');
      const splitCfg = data[options.split];
      if (!splitCfg || typeof splitCfg !== 'object') throw new SegkitError(`data.${options.split}: the config has no ${options.split} dataset`, `data.${options.split}`);
      const dataset = kernel.build('datasets', splitCfg, { path: `data.${options.split}` });
      if (dataset.length === 0) throw new SegkitError(`data.${options.split}: the dataset has no samples`);
      await browseDataset(dataset, {
        outDir: options.out,
        count: options.count,
        random: SeededRandom.fromSeed(options.seed),
        opacity: options.opacity,
        zoom: options.zoom,
        onWritten: (written) => console.log(`wrote ${written}`),
      });
    });

  program
    .command('analyze-logs <logs...>')
    .description('curves of several JSON logs on one figure, or their iteration times (MMSegmentation tools/analyze_logs.py)')
    .option('--keys <keys...>', 'log keys to plot (lr and lr.<group> go on a second y-axis next to other keys)', ['loss'])
    .option('--legend <names...>', 'one legend entry per log and key, logs outer (default: <log name> <key>)')
    .option('--smooth <n>', 'moving average over this many logged points (not applied to lr)', atLeast('--smooth', 1), 1)
    .option('--log-scale', 'logarithmic y-axes')
    .option('--title <title>', 'figure title')
    .option('--out <file>', 'output .svg or .png', 'curves.png')
    .option('--cal-train-time', 'print the average, slowest and fastest iteration times of each log instead of plotting')
    .option('--include-outliers', 'with --cal-train-time: keep the first logged interval (start-up)')
    .action(
      async (
        logs: string[],
        options: { keys: string[]; legend?: string[]; smooth: number; logScale?: boolean; title?: string; out: string; calTrainTime?: boolean; includeOutliers?: boolean },
      ) => {
        if (options.calTrainTime) {
          console.log(logs.map((log) => formatTrainTime(calTrainTime(log, { includeOutliers: options.includeOutliers }))).join('\n'));
          return;
        }
        const written = await analyzeLogs(logs, options.out, { keys: options.keys, legend: options.legend, smooth: options.smooth, logScale: options.logScale, title: options.title });
        console.log(`wrote ${written}`);
      },
    );

  withCommon(
    program
      .command('benchmark <config> [checkpoint]')
      .description('inference images/s on the test pipeline and training seconds per iteration (MMSegmentation tools/benchmark.py)'),
  )
    .option('--images <n>', 'timed test images (cycling over the test split when it has fewer)', atLeast('--images', 1), 50)
    .option('--warmup <n>', 'untimed images (and training iterations) first', atLeast('--warmup', 0), 5)
    .option('--train-iters <n>', 'timed training iterations (0: skip training)', atLeast('--train-iters', 0), 10)
    .action(async (file: string, checkpointFile: string | undefined, options: CommonOptions & { images: number; warmup: number; trainIters: number }) => {
      if (checkpointFile) requireFile(checkpointFile, 'checkpoint');
      else console.warn('note: no checkpoint given: inference runs with the initial weights (the timing does not depend on them)');
      const handle = await initSegmentor(file, checkpointFile, { ...options, logger: quietLogger });
      let inference: InferenceTiming;
      const backend = handle.kernel.backend;
      try {
        inference = await benchmarkInference(handle, { images: options.images, warmup: options.warmup });
      } finally {
        handle.dispose();
      }
      const training =
        options.trainIters > 0 ? await benchmarkTraining(file, { iterations: options.trainIters, warmup: options.warmup, cfgOptions: options.cfgOptions, backend: options.backend, logger: silentLogger }) : undefined;
      console.log(formatBenchmark(backend, inference, training));
    });
}
