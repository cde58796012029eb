import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Logger } from '../plugin-system/registries';

/** A logger that records what it was told, for asserting warnings. */
export function recordingLogger(): Logger & { infos: string[]; warnings: string[] } {
  const infos: string[] = [];
  const warnings: string[] = [];
  return { infos, warnings, info: (m) => infos.push(m), warn: (m) => warnings.push(m) };
}

/** Writes `files` (relative path → content) into a fresh temporary folder and returns it. */
export function tempTree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-test-'));
  for (const [relative, content] of Object.entries(files)) {
    const file = path.join(root, relative);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
  }
  return root;
}

/** Runs `fn` and returns the SegkitError message it throws (fails if it does not throw). */
export async function errorMessage(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected an error');
}
