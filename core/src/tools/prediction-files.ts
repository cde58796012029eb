import * as fs from 'fs';
import * as path from 'path';
import { SegkitError } from '../errors';
import { BUILTIN_PALETTES, parseClasses, parsePalette, type ClassPalette } from './palette';

export { BUILTIN_PALETTES, colorizeLabels, defaultPalette, resolvePalette } from './palette';
export type { ClassPalette, Rgb } from './palette';

/**
 * `--palette`: a built-in name (`cityscapes`, `drive`) or a JSON file holding `[[r,g,b], ...]` or
 * `{ "classes": [...], "palette": [[r,g,b], ...] }`.
 */
export function readPaletteOption(value: string): ClassPalette {
  const builtin = BUILTIN_PALETTES[value.toLowerCase()];
  if (builtin) return { classes: [...builtin.classes], palette: [...builtin.palette], source: `--palette ${value}` };
  if (!fs.existsSync(value)) {
    throw new SegkitError(`--palette: '${value}' is neither a built-in palette (${Object.keys(BUILTIN_PALETTES).join(', ')}) nor an existing JSON file`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(value, 'utf8'));
  } catch (error) {
    throw new SegkitError(`--palette ${value}: not valid JSON (${(error as Error).message})`);
  }
  if (Array.isArray(parsed)) return { palette: parsePalette(parsed, `--palette ${value}`), source: `--palette ${value}` };
  if (parsed && typeof parsed === 'object') {
    const record = parsed as Record<string, unknown>;
    const palette = parsePalette(record.palette, `--palette ${value}: palette`);
    const classes = parseClasses(record.classes, `--palette ${value}: classes`);
    if (classes && classes.length !== palette.length) throw new SegkitError(`--palette ${value}: ${classes.length} classes but ${palette.length} colours`);
    return { classes, palette, source: `--palette ${value}` };
  }
  throw new SegkitError(`--palette ${value}: expected [[r,g,b], ...] or { "classes": [...], "palette": [...] }`);
}

/** File extensions `infer` takes from a folder. */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp']);

const GLOB_CHARS = /[*?[]/;

/** A glob as a regular expression over '/'-separated relative paths: `*`, `?`, `[abc]`, and `**` for any folders. */
export function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === '*' && pattern[i + 1] === '*') {
      // `**/` matches zero or more folders; a trailing `**` anything.
      if (pattern[i + 2] === '/') {
        source += '(?:[^/]*/)*';
        i += 2;
      } else {
        source += '.*';
        i += 1;
      }
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else if (char === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw new SegkitError(`glob '${pattern}': '[' without a closing ']'`);
      const body = pattern.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
      source += `[${body}]`;
      i = end;
    } else source += char.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

function walk(dir: string, relative: string, out: string[]): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const rel = relative ? `${relative}/${entry.name}` : entry.name;
    if (entry.isDirectory()) walk(path.join(dir, entry.name), rel, out);
    else out.push(rel);
  }
}

/**
 * `infer`'s image arguments as files, in order: a file as is, a folder as its images (sorted, not recursive),
 * a glob (`images/*.png`, `data/**\/*.jpg`) as the files it matches (sorted). Each argument that names nothing
 * is an error.
 */
export function expandImageArguments(args: readonly string[]): string[] {
  const files: string[] = [];
  for (const arg of args) {
    if (fs.existsSync(arg)) {
      if (fs.statSync(arg).isDirectory()) {
        const images = fs.readdirSync(arg).filter((name) => IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase())).sort();
        if (images.length === 0) throw new SegkitError(`infer: folder ${arg} holds no images (${[...IMAGE_EXTENSIONS].join(', ')})`);
        files.push(...images.map((name) => path.join(arg, name)));
      } else files.push(arg);
      continue;
    }
    const normalized = arg.split(path.sep).join('/');
    if (!GLOB_CHARS.test(normalized)) throw new SegkitError(`infer: image not found: ${arg}`);
    // The folder part before the first glob character is walked; the rest is matched.
    const segments = normalized.split('/');
    const firstGlob = segments.findIndex((segment) => GLOB_CHARS.test(segment));
    const base = segments.slice(0, firstGlob).join('/') || '.';
    const matcher = globToRegExp(segments.slice(firstGlob).join('/'));
    const found: string[] = [];
    if (fs.existsSync(base) && fs.statSync(base).isDirectory()) walk(base, '', found);
    const matched = found.filter((rel) => matcher.test(rel)).sort();
    if (matched.length === 0) throw new SegkitError(`infer: no file matches ${arg}`);
    files.push(...matched.map((rel) => (base === '.' && !normalized.startsWith('./') ? rel : `${base}/${rel}`)));
  }
  return files;
}
