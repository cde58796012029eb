import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SegkitError } from '../errors';
import type { Logger } from '../plugin-system/registries';
import { loadConfigAndKernel, testDatasetConfig, type SegmentorHandle } from '../apis/segmentor';
import { predictSample } from '../evaluation/evaluate';
import { train } from '../training/runner';
import { formatTextTable } from './text-table';

/** The middle value (mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new SegkitError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface InferenceTiming {
  images: number;
  warmup: number;
  /** Median seconds of one image's forward pass (test pipeline output to label map at original size). */
  medianSeconds: number;
  imagesPerSecond: number;
}

/**
 * MMSegmentation's tools/benchmark.py: the test split's images through the test pipeline (batch 1, the model's
 * test_cfg), `warmup` untimed images first, then the median over `images` timed ones. Data loading is not
 * timed; the timing ends when the label map is read back, so asynchronous backends have finished.
 */
export async function benchmarkInference(handle: SegmentorHandle, options: { images: number; warmup: number }): Promise<InferenceTiming> {
  const { cfg, path: configPath } = testDatasetConfig(handle.config);
  const dataset = handle.kernel.build('datasets', cfg, { path: configPath });
  if (dataset.length === 0) throw new SegkitError(`${configPath}: the dataset has no images to benchmark on`, configPath);
  const times: number[] = [];
  for (let i = 0; i < options.warmup + options.images; i++) {
    // Fewer images than requested: cycle over them (the timing is per forward pass).
    const sample = await dataset.get(i % dataset.length);
    const started = performance.now();
    await predictSample(handle.model, sample, handle.testCfg);
    if (i >= options.warmup) times.push((performance.now() - started) / 1000);
  }
  const medianSeconds = median(times);
  return { images: options.images, warmup: options.warmup, medianSeconds, imagesPerSecond: 1 / medianSeconds };
}

export interface TrainingTiming {
  iterations: number;
  warmup: number;
  /** Median seconds per training iteration (batch wait + forward, backward and optimizer step). */
  medianIterSeconds: number;
  /** Median seconds the data loader took to produce a batch. */
  medianDataSeconds: number;
  batchSize: number;
}

/**
 * Runs the config's training for `warmup + iterations` iterations in a temporary work dir (no evaluation,
 * no loggers, no checkpoints kept) and takes the median of the timed iterations' times from the bus.
 */
export async function benchmarkTraining(
  configFile: string,
  options: { iterations: number; warmup: number; cfgOptions?: readonly string[]; backend?: string; logger?: Logger },
): Promise<TrainingTiming> {
  const total = options.warmup + options.iterations;
  const cfgOptions = [...(options.cfgOptions ?? []), `runner.max_iters=${total}`, 'log_config.hooks=[]', `checkpoint_config.interval=${total + 1}`];
  const { config, kernel } = await loadConfigAndKernel(configFile, { cfgOptions, backend: options.backend, logger: options.logger });
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-benchmark-'));
  const iterTimes: number[] = [];
  const dataTimes: number[] = [];
  const subscription = kernel.bus.on('iter:end').subscribe((event) => {
    if (event.iter > options.warmup) {
      iterTimes.push(event.stepTime);
      dataTimes.push(event.dataTime);
    }
  });
  try {
    await train({ kernel, config, workDir, noValidate: true });
  } finally {
    subscription.unsubscribe();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  const data = (config.data ?? {}) as { samples_per_gpu?: number };
  return { iterations: options.iterations, warmup: options.warmup, medianIterSeconds: median(iterTimes), medianDataSeconds: median(dataTimes), batchSize: data.samples_per_gpu ?? 1 };
}

/** The results as one table (`segkit benchmark` output). */
export function formatBenchmark(backend: string, inference: InferenceTiming | undefined, training: TrainingTiming | undefined): string {
  const rows: string[][] = [];
  if (inference) {
    rows.push(['inference', 'images/s', inference.imagesPerSecond.toFixed(3), `median of ${inference.images} images after ${inference.warmup} warm-up, batch 1`]);
    rows.push(['inference', 's/image', inference.medianSeconds.toFixed(4), '']);
  }
  if (training) {
    const note = `median of ${training.iterations} iterations after ${training.warmup} warm-up, batch ${training.batchSize}`;
    rows.push(['training', 's/iter', training.medianIterSeconds.toFixed(4), note]);
    rows.push(['training', 'data s/iter', training.medianDataSeconds.toFixed(4), '']);
    rows.push(['training', 'images/s', (training.batchSize / training.medianIterSeconds).toFixed(3), '']);
  }
  return `backend: ${backend}\n${formatTextTable(['phase', 'measure', 'value', 'how'], rows, [2])}`;
}
