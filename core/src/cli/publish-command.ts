import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { Command } from 'commander';
import { SegkitError } from '../errors';
import { readCheckpointFile } from '../checkpoint/checkpoint-file';
import { writeSafetensors } from '../checkpoint/safetensors';
import { writeTorchCheckpoint } from '../checkpoint/torch-format';
import { convertLayout } from '../checkpoint/mapping';

const EXTENSIONS = new Set(['.safetensors', '.pth']);

export interface PublishResult {
  /** The file written: OUT's stem + `-<first 8 hex digits of its sha256>` + OUT's extension. */
  file: string;
  sha256: string;
  tensors: number;
  /** What was dropped (optimizer state), one line each. */
  notes: string[];
}

/**
 * MMCV's `publish_model`: the weights and `meta` without the optimizer state, written to OUT, then renamed
 * to `<OUT stem>-<sha256[:8]><ext>` so the name carries a hash a downloader can check. The format follows
 * OUT's extension (.safetensors in segkit's layout, or .pth in PyTorch's); the source may be either.
 */
export async function publishCheckpoint(source: string, out: string): Promise<PublishResult> {
  if (!fs.existsSync(source)) throw new SegkitError(`publish: checkpoint not found: ${source}`);
  const sourceExtension = path.extname(source).toLowerCase();
  if (!EXTENSIONS.has(sourceExtension)) throw new SegkitError(`publish: ${source}: expected a .safetensors or .pth checkpoint`);
  const extension = path.extname(out).toLowerCase();
  if (!EXTENSIONS.has(extension)) throw new SegkitError(`publish: ${out}: expected OUT to end in .safetensors or .pth`);
  const contents = await readCheckpointFile(source);
  // readCheckpointFile leaves the optimizer tensors out already; its hyper-state lives in meta.
  const { optimizer, ...meta } = contents.meta ?? {};
  const notes = [...contents.notes];
  if (optimizer !== undefined) notes.push('optimizer hyper-state removed from meta');
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const temporary = `${out}.publish-${process.pid}${extension}`;
  try {
    if (extension === '.pth') {
      writeTorchCheckpoint(temporary, convertLayout(contents.tensors, contents.layout, 'torch'), { meta });
    } else if (contents.layout === 'torch') {
      writeSafetensors(temporary, contents.tensors, { format: 'pt', meta: JSON.stringify(meta) });
    } else {
      writeSafetensors(temporary, contents.tensors, { format: 'segkit', meta: JSON.stringify({ iter: 0, ...meta }) });
    }
    const sha256 = crypto.createHash('sha256').update(fs.readFileSync(temporary)).digest('hex');
    const file = path.join(path.dirname(out), `${path.basename(out, path.extname(out))}-${sha256.slice(0, 8)}${path.extname(out)}`);
    fs.renameSync(temporary, file);
    return { file, sha256, tensors: contents.tensors.size, notes };
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

/** `segkit publish CHECKPOINT OUT` (MMSegmentation tools/publish_model.py). */
export function installPublishCommand(program: Command): void {
  program
    .command('publish <checkpoint> <out>')
    .description(
      'prepare a checkpoint for release (MMSegmentation tools/publish_model.py): drop the optimizer state, keep meta, ' +
        'write OUT (.safetensors or .pth, by its extension) named <OUT stem>-<first 8 hex digits of its sha256><ext>',
    )
    .action(async (checkpoint: string, out: string) => {
      const result = await publishCheckpoint(checkpoint, out);
      for (const note of result.notes) console.log(`note: ${note}`);
      console.log(`wrote ${result.file} (${result.tensors} tensors, sha256 ${result.sha256})`);
    });
}
