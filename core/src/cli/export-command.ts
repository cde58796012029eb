import * as fs from 'fs';
import { Option, type Command } from 'commander';
import { SegkitError } from '../errors';
import { initSegmentor } from '../apis/segmentor';
import { exportFormats, exportSegmentor, type ExportOptions } from '../export';
import { withCommon, type CommonOptions } from './options';

/** `--input-size H,W` (or `HxW`): two positive integers. */
export function parseInputSize(value: string): [number, number] {
  const parts = value.split(/[,x×]/).map((part) => part.trim());
  const numbers = parts.map(Number);
  if (numbers.length !== 2 || parts.some((part) => part === '') || !numbers.every((n) => Number.isInteger(n) && n > 0)) {
    throw new SegkitError(`--input-size: expected two positive integers H,W (e.g. 512,1024), got '${value}'`);
  }
  return [numbers[0]!, numbers[1]!];
}

/** What the exported graph takes and gives, in words, for the command's summary line. */
function describeExport(format: string, options: ExportOptions): string {
  const size = options.inputSize ? `${options.inputSize[0]}×${options.inputSize[1]}` : 'dynamic H×W';
  const input = options.bakeNormalization ? 'image [N,3,H,W] RGB 0..255, normalization baked in' : 'image [N,3,H,W] normalized as the test pipeline does';
  const output = options.output === 'logits' ? 'logits [N,C,H,W] float32' : 'labels [N,H,W] int32';
  return `${format}, ${size}; input ${input}; output ${output}`;
}

/** `segkit export CONFIG CHECKPOINT --format onnx --out PATH` (MMSegmentation tools/pytorch2onnx.py). */
export function installExportCommand(program: Command): void {
  withCommon(
    program
      .command('export <config> <checkpoint>')
      .description("export the whole-image inference graph for other runtimes (MMSegmentation tools/pytorch2onnx.py); auxiliary heads are left out"),
  )
    .addOption(new Option('--format <format>', 'export format').choices(exportFormats()).makeOptionMandatory())
    .requiredOption('--out <path>', 'output file (e.g. model.onnx)')
    .option('--input-size <h,w>', 'fix the input height and width (default: dynamic where the graph allows)', parseInputSize)
    .addOption(new Option('--output <kind>', "'logits' [N,C,H,W] or 'labels' (the argmax) [N,H,W]").choices(['logits', 'labels']).default('logits'))
    .option('--no-normalization', "leave the test pipeline's Normalize out of the graph: the input is then the normalized tensor (default: the graph takes RGB pixels 0..255)")
    .action(async (config: string, checkpoint: string, options: CommonOptions & { format: string; out: string; inputSize?: [number, number]; output: 'logits' | 'labels'; normalization: boolean }) => {
      const exportOptions: ExportOptions = { inputSize: options.inputSize, output: options.output, bakeNormalization: options.normalization };
      // Before the model is built, so that a typo fails at once.
      if (!fs.existsSync(checkpoint)) throw new SegkitError(`export: checkpoint not found: ${checkpoint}`);
      const handle = await initSegmentor(config, checkpoint, options);
      try {
        if (handle.testCfg.mode === 'slide') {
          console.warn(`note: the config's test_cfg is slide inference (crop_size ${handle.testCfg.crop_size?.join('×')}, stride ${handle.testCfg.stride?.join('×')}); the exported graph is whole-image inference, to run on each window`);
        }
        const report = await exportSegmentor(options.format, handle, options.out, exportOptions);
        console.log(`wrote ${report.files.join(', ')} (${describeExport(options.format, exportOptions)})`);
      } finally {
        handle.dispose();
      }
    });
}
