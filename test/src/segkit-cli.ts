import { spawnSync } from 'child_process';
import * as path from 'path';

export const repo = path.resolve(__dirname, '..', '..');
const bin = path.join(repo, 'core', 'bin', 'segkit.js');

/** Runs the segkit CLI as a user would; returns exit code and outputs. */
export function segkit(args: string[], cwd = repo): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, SEGKIT_DEBUG: '' } });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
