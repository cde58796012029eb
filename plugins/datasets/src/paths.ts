import * as fs from 'fs';
import * as path from 'path';

/**
 * Resolves a data path the way MMSegmentation users expect: relative to the working directory
 * (configs say `data/cityscapes` and are run from the project root); if it does not exist there but
 * does next to the config, that one. A path that exists nowhere resolves against the working directory,
 * so errors name the place the user most likely meant.
 */
export function resolveDataPath(file: string, configDir: string): string {
  if (path.isAbsolute(file)) return file;
  const fromCwd = path.resolve(process.cwd(), file);
  if (fs.existsSync(fromCwd)) return fromCwd;
  const fromConfig = path.resolve(configDir, file);
  return fs.existsSync(fromConfig) ? fromConfig : fromCwd;
}

/** Files under `dir` ending in `suffix`, as relative paths (recursive, hidden names skipped), sorted by relative path. */
export function scanFiles(dir: string, suffix: string): string[] {
  const found: string[] = [];
  const walk = (relative: string) => {
    for (const entry of fs.readdirSync(path.join(dir, relative), { withFileTypes: true })) {
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      const isDir = entry.isDirectory() || (entry.isSymbolicLink() && fs.statSync(path.join(dir, child)).isDirectory());
      if (isDir) walk(child);
      else if (!entry.name.startsWith('.') && child.endsWith(suffix)) found.push(child);
    }
  };
  walk('');
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
