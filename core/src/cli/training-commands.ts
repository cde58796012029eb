import * as path from 'path';
import type { Command } from 'commander';
import { SegkitError, isSegkitError } from '../errors';
import { train } from '../training/runner';
import { seedEverything } from '../training/seed';
import { buildOptimizerConstructor } from '../training/build';
import { plotLogCurves } from '../tools/plot';
import { configCropSize, describeModel, formatModelInfo } from '../tools/model-info';
import { renderOverlay } from '../tools/overlay';
import { readImage, writePng } from '../io/image';
import { startProgress } from '../tools/progress';
import { BUILTIN_PALETTES, colorizeLabels, expandImageArguments, readPaletteOption, resolvePalette } from '../tools/prediction-files';
import { evaluateSegmentor } from '../evaluation/evaluate';
import { readCheckpointFile } from '../checkpoint/checkpoint-file';
import { configSection, inferenceSegmentor, initSegmentor, loadConfigAndKernel, testDatasetConfig as testDatasetConfigOf } from '../apis/segmentor';
import type { EvaluationResult, NdArray } from '../components';
import { withCommon, type CommonOptions } from './options';
import { writeMmsegConversion } from '../config/mmseg';
import { convertCheckpoint } from '../checkpoint';
import { makeDirectory, writeFileOrExplain } from '../os-errors';
import { LAUNCHERS, startLauncher, threadsPerRank } from '../distributed/launch';
import type { Communicator } from '../distributed/communicator';
import type { Logger } from '../plugin-system/registries';

/** Writes the overlay, the palette PNG (colour, viewable) and the raw label PNG of one prediction. */
async function writePrediction(outDir: string, file: string, prediction: NdArray<Int32Array>, palette: readonly (readonly number[])[], opacity: number): Promise<string[]> {
  const stem = path.basename(file).replace(/\.[^.]+$/, '');
  const overlayFile = path.join(outDir, `${stem}_overlay.png`);
  const paletteFile = path.join(outDir, `${stem}_palette.png`);
  const labelFile = path.join(outDir, `${stem}_pred.png`);
  // Pipelines decode BGR like OpenCV; the overlay is drawn on the image as people see it.
  const rgb = await readImage(file, { order: 'rgb' });
  const colours = palette.map((c) => [c[0]!, c[1]!, c[2]!] as const);
  writePng(overlayFile, renderOverlay(rgb, prediction.data, colours.map((c) => [...c]), opacity));
  writePng(paletteFile, colorizeLabels(prediction, colours));
  writePng(labelFile, prediction);
  return [overlayFile, paletteFile, labelFile];
}

/** `segkit test --out`: the summary metrics and the per-class values, as JSON. */
export function testResultsJson(result: EvaluationResult, sources: { config: string; checkpoint: string; metrics: readonly string[] }): Record<string, unknown> {
  const summary = Object.fromEntries(Object.entries(result.metrics).filter(([key]) => !key.includes('.')));
  // NaN (a class absent from both prediction and truth) is not JSON: null.
  const finite = (value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value);
  return {
    config: sources.config,
    checkpoint: sources.checkpoint,
    eval: [...sources.metrics],
    metrics: Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, finite(v)])),
    per_class: result.classTable.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, finite(v)]))),
  };
}

/** `segkit convert checkpoint` and `convert config` (plugins add other `convert` sub-commands). */
export function installConvertCommands(program: Command): void {
  const convert = program.command('convert').description('convert MMSegmentation configs and checkpoints, or an official dataset release');
  convert
    .command('checkpoint <src> <dst>')
    .description('convert between PyTorch .pth and .safetensors, both directions (by the file extensions)')
    .option('--layout <layout>', "safetensors layout: 'segkit' (HWIO convolutions) or 'torch' (OIHW, for Python's safetensors)", 'segkit')
    .action(async (src: string, dst: string, options: { layout: string }) => {
      if (options.layout !== 'segkit' && options.layout !== 'torch') throw new SegkitError(`--layout: expected 'segkit' or 'torch', got '${options.layout}'`);
      const result = await convertCheckpoint(src, dst, { layout: options.layout });
      for (const note of result.notes) console.warn(`note: ${note}`);
      console.log(`wrote ${dst} (${result.tensors} tensors)`);
    });
  convert
    .command('config <src>')
    .description('convert an MMSegmentation 0.x .py config (and its .py bases) to segkit .ts configs')
    .option('--out <dst>', 'a .ts file for the converted config, or a folder to mirror the .py tree into (default: next to each .py)')
    .option('--force', 'overwrite existing .ts files')
    .action(async (src: string, options: { out?: string; force?: boolean }) => {
      const result = await writeMmsegConversion(src, { out: options.out, overwrite: options.force, onNotice: (m) => console.warn(`warning: ${m}`) });
      for (const file of result.files) console.log(`wrote ${path.relative(process.cwd(), file.target)}`);
    });
}

/** The console logger of one rank: MMCV's, where ranks other than 0 log errors only. */
function rankLogger(rank: number): Logger {
  return rank === 0 ? { info: (m) => console.log(m), warn: (m) => console.warn(`warning: ${m}`) } : { info: () => undefined, warn: () => undefined };
}

/**
 * An error on one rank of a data-parallel run: the other ranks may be waiting in a collective for this
 * one, so the launcher must end them all (MPI_Abort). The message names the rank.
 */
function abortGroup(group: Communicator, error: unknown): never {
  const err = error instanceof Error ? error : new Error(String(error));
  const where = `rank ${group.rank} of ${group.size}`;
  console.error(isSegkitError(err) ? `segkit: ${where}: ${err.message}` : `segkit: ${where}: internal error: ${err.message}`);
  if (!isSegkitError(err) && process.env.SEGKIT_DEBUG) console.error(err.stack);
  console.error(`segkit: ${where}: ending every rank of the run`);
  return group.abort(isSegkitError(err) ? 1 : 70);
}

/** `train`, `test`, `infer`, `info` and `plot`: thin wrappers over the apis layer. */
export function installTrainingCommands(program: Command): void {
  withCommon(program.command('train <config>').description('train a model from a config (MMSegmentation tools/train.py)'))
    .option('--work-dir <dir>', 'where logs and checkpoints go (default: work_dirs/<config name>)')
    .option('--resume-from <checkpoint>', 'continue a run: weights, optimizer, iteration, LR schedule and data order')
    .option('--load-from <checkpoint>', 'start from these weights only')
    .option('--seed <n>', 'random seed (parameter init, data order, augmentation)', (v) => Number.parseInt(v, 10))
    .option('--deterministic', 'accepted for MMSegmentation parity: segkit runs are deterministic for a given seed and backend')
    .option('--no-validate', 'do not evaluate during training')
    .option('--strict', 'unknown top-level config keys are errors (default: warnings)')
    .option('--launcher <name>', `data-parallel job launcher: ${LAUNCHERS.join(', ')} (run under mpirun or srun; needs @segkit/dist-mpi)`, 'none')
    .action(async (file: string, options: CommonOptions & { workDir?: string; resumeFrom?: string; loadFrom?: string; seed?: number; validate: boolean; strict?: boolean; launcher: string }) => {
      if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new SegkitError('--seed: expected an integer');
      const group = await startLauncher(options.launcher, rankLogger(0));
      try {
        if (group.localSize > 1 && process.env.SEGKIT_NUM_THREADS === undefined) {
          // Before the backend loads: ranks on one machine share its cores (CPU backends read this).
          process.env.SEGKIT_NUM_THREADS = String(threadsPerRank(group.localSize));
        }
        const { config, kernel } = await loadConfigAndKernel(file, { ...options, logger: rankLogger(group.rank) });
        const result = await train({
          kernel,
          config,
          workDir: options.workDir,
          resumeFrom: options.resumeFrom,
          loadFrom: options.loadFrom,
          seed: options.seed,
          noValidate: !options.validate,
          strict: options.strict,
          communicator: group,
        }).finally(() => kernel.releaseBackend());
        if (group.rank === 0) console.log(`finished ${result.iter} iterations; work_dir: ${result.workDir}`);
        group.finalize();
      } catch (error) {
        if (group.size > 1) abortGroup(group, error);
        throw error;
      }
    });

  withCommon(program.command('test <config> <checkpoint>').description('evaluate a checkpoint on the test set (MMSegmentation tools/test.py)'))
    .option('--eval <metrics...>', 'mIoU, mDice, mFscore', ['mIoU'])
    .option('--out <file>', 'also write the metrics and per-class values as JSON (e.g. results.json)')
    .option('--show-dir <dir>', 'write per image: an overlay, the prediction in palette colours, and the raw label PNG')
    .option('--opacity <x>', 'overlay opacity (0..1)', Number.parseFloat, 0.5)
    .option('--quiet', 'no progress bar or progress lines')
    .action(async (file: string, checkpointFile: string, options: CommonOptions & { eval: string[]; out?: string; showDir?: string; opacity: number; quiet?: boolean }) => {
      if (!(options.opacity >= 0 && options.opacity <= 1)) throw new SegkitError(`--opacity: expected a number in [0, 1], got ${options.opacity}`);
      if (options.out !== undefined && path.extname(options.out).toLowerCase() !== '.json') throw new SegkitError(`--out: expected a .json file, got '${options.out}'`);
      // Created before the model loads, so that a bad path fails at once.
      if (options.showDir) makeDirectory(options.showDir, '--show-dir');
      const handle = await initSegmentor(file, checkpointFile, options);
      try {
        const { cfg, path: configPath } = testDatasetConfigOf(handle.config);
        const dataset = handle.kernel.build('datasets', cfg, { path: configPath });
        const metrics = options.eval.map((metric, i) => handle.kernel.build('metrics', { type: metric }, { path: `--eval.${i}` }));
        const progress = startProgress({ label: 'test', total: dataset.length, unit: 'images', quiet: options.quiet });
        let result: EvaluationResult;
        try {
          result = await evaluateSegmentor(handle.model, dataset, {
            testCfg: handle.testCfg,
            metrics,
            onPrediction: options.showDir
              ? async (_index, prediction, sample) => {
                  await writePrediction(options.showDir!, String(sample.filename), prediction, dataset.palette, options.opacity);
                }
              : undefined,
            onProgress: (done) => progress.update(done),
          });
        } finally {
          progress.stop();
        }
        console.log(result.text);
        if (options.out) {
          makeDirectory(path.dirname(path.resolve(options.out)), '--out');
          writeFileOrExplain(options.out, `${JSON.stringify(testResultsJson(result, { config: file, checkpoint: checkpointFile, metrics: options.eval }), null, 2)}\n`, '--out');
          console.log(`wrote ${options.out}`);
        }
      } finally {
        handle.dispose();
      }
    });

  withCommon(
    program
      .command('infer <config> <checkpoint> <images...>')
      .description('predict label maps for images, folders (their images) or globs (quoted: "dir/**/*.png"); writes overlays, palette and label PNGs'),
  )
    .requiredOption('--out <dir>', 'output folder')
    .option('--opacity <x>', 'overlay opacity (0..1)', Number.parseFloat, 0.5)
    .option('--palette <name|file>', `colours: a built-in name (${Object.keys(BUILTIN_PALETTES).join(', ')}) or a JSON file; default: the checkpoint's meta, then the config's dataset, then generated colours`)
    .option('--quiet', 'no progress bar or progress lines')
    .action(async (file: string, checkpointFile: string, images: string[], options: CommonOptions & { out: string; opacity: number; palette?: string; quiet?: boolean }) => {
      if (!(options.opacity >= 0 && options.opacity <= 1)) throw new SegkitError(`--opacity: expected a number in [0, 1], got ${options.opacity}`);
      makeDirectory(options.out, '--out');
      const files = expandImageArguments(images);
      const explicitPalette = options.palette !== undefined ? readPaletteOption(options.palette) : undefined;
      const handle = await initSegmentor(file, checkpointFile, options);
      try {
        // Colours without building the dataset, so no dataset folder is needed.
        const { meta } = await readCheckpointFile(checkpointFile);
        const { palette, source } = resolvePalette({ explicit: explicitPalette, checkpointMeta: meta, config: handle.config, numClasses: handle.model.numClasses });
        if (palette.length < handle.model.numClasses) console.warn(`warning: ${source} has ${palette.length} colours for ${handle.model.numClasses} classes; the others are drawn black`);
        const failures: { image: string; reason: string }[] = [];
        const progress = startProgress({ label: 'infer', total: files.length, unit: 'images', quiet: options.quiet });
        try {
          for (const image of files) {
            try {
              const { labels } = await inferenceSegmentor(handle, image);
              const written = await writePrediction(options.out, image, labels, palette, options.opacity);
              console.log(`${image} -> ${written.join(', ')}`);
            } catch (error) {
              // One unreadable image does not stop the others; the failures are summed up at the end.
              failures.push({ image, reason: (error as Error).message });
              console.warn(`warning: ${image}: ${(error as Error).message}`);
            }
            progress.increment();
          }
        } finally {
          progress.stop();
        }
        if (failures.length > 0) {
          const list = failures.map((f) => `  ${f.image}: ${f.reason}`).join('\n');
          throw new SegkitError(`infer: ${failures.length} of ${files.length} images failed:\n${list}`);
        }
      } finally {
        handle.dispose();
      }
    });

  withCommon(program.command('info <config>').description('parameter counts, tensors, per-module breakdown and forward FLOPs (MMSegmentation get_flops.py)'))
    .option('--input-shape <hw...>', 'input height and width (default: the config\'s crop size)')
    .option('--param-groups', "list every parameter's lr and weight decay as the optimizer config resolves them")
    .action(async (file: string, options: CommonOptions & { inputShape?: string[]; paramGroups?: boolean }) => {
      // With --param-groups the optimizer constructor's group table (logged at info level) is wanted too.
      const logger = { info: options.paramGroups ? (m: string) => console.log(m) : () => undefined, warn: (m: string) => console.warn(`warning: ${m}`) };
      const { config, kernel } = await loadConfigAndKernel(file, { ...options, backend: options.backend ?? 'cpu', logger });
      let shape = configCropSize(config) ?? [512, 512];
      if (options.inputShape) {
        const parsed = options.inputShape.map(Number);
        if (parsed.length !== 2 || parsed.some((v) => !Number.isInteger(v) || v < 1)) throw new SegkitError(`--input-shape: expected two positive integers H W, got ${options.inputShape.join(' ')}`);
        shape = [parsed[0]!, parsed[1]!];
      }
      seedEverything(0);
      const model = kernel.build('segmentors', configSection(config, 'model'), { path: 'model' });
      console.log(formatModelInfo(describeModel(model, shape)));
      if (options.paramGroups) {
        const constructor = buildOptimizerConstructor(kernel, configSection(config, 'optimizer'));
        const optimizer = constructor.build(model);
        console.log(`\n${constructor.describeParameters?.(optimizer) ?? 'this optimizer constructor cannot list its parameter settings'}`);
        optimizer.dispose();
      }
      model.dispose();
    });

  program
    .command('plot <log>')
    .description('draw loss / metric curves from a JSON log (MMSegmentation analyze_logs.py plot_curve)')
    .option('--keys <keys...>', 'log keys to plot', ['loss'])
    .option('--out <file>', 'output .svg or .png', 'curves.png')
    .option('--title <title>', 'plot title')
    .action(async (log: string, options: { keys: string[]; out: string; title?: string }) => {
      const written = await plotLogCurves(log, { keys: options.keys, out: options.out, title: options.title });
      console.log(`wrote ${written}`);
    });
}
