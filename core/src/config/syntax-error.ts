import * as fs from 'fs';
import { spawnSync } from 'child_process';

/** Where a syntax error is: 1-based line and column, as editors and compilers count. */
export interface SyntaxErrorLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/**
 * The location of a syntax error raised while loading `file` (a config or a plugin), or undefined when
 * `error` is not one:
 * - TypeScript through jiti: `ParseError: <message> \n <file>:<line>:<column>` (Babel's 0-based column);
 * - JavaScript through Node's require: the stack starts with `<file>:<line>`, the source line and a caret;
 *   an ES module compiled by require() has no location, so `node --check` finds it;
 * - JSON: `... in JSON at position <n>`.
 */
export function syntaxErrorLocation(file: string, error: unknown): SyntaxErrorLocation | undefined {
  if (!(error instanceof Error)) return undefined;
  const jiti = /^(?:ParseError|SyntaxError): ([^\n]*?)\s*\n\s*(.+):(\d+):(\d+)\s*$/.exec(error.message);
  if (jiti) return { file: jiti[2]!, line: Number(jiti[3]), column: Number(jiti[4]) + 1, message: withToken(jiti[1]!.trim(), jiti[2]!, Number(jiti[3]), Number(jiti[4])) };
  if (error.name !== 'SyntaxError') return undefined;
  if (/\.json$/i.test(file)) return jsonLocation(file, error.message);
  const fromStack = caretLocation(error.stack ?? '', error.message);
  if (fromStack) return fromStack;
  // Only plain JavaScript can be checked by Node itself (a .ts file's types would be syntax errors).
  return /\.(js|cjs|mjs)$/.test(file) ? nodeCheckLocation(file) : undefined;
}

/** One line for a syntax error: `<file>:<line>:<column>: syntax error: <message>`. */
export function formatSyntaxError(location: SyntaxErrorLocation): string {
  return `${location.file}:${location.line}:${location.column}: syntax error: ${location.message}`;
}

/** Babel's "Unexpected token" does not say which: add the text at the position. */
function withToken(message: string, file: string, line: number, zeroBasedColumn: number): string {
  if (!/^Unexpected token$/.test(message)) return message;
  const near = sourceLine(file, line)?.slice(zeroBasedColumn).trim().slice(0, 20);
  return near ? `${message} at '${near}'` : message;
}

function sourceLine(file: string, line: number): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').split(/\r?\n/)[line - 1];
  } catch {
    return undefined;
  }
}

/** Node's V8 syntax errors: `<file>:<line>\n<source line>\n<spaces>^...\n\nSyntaxError: <message>`. */
function caretLocation(text: string, message: string): SyntaxErrorLocation | undefined {
  // The caret line copies the source line's tabs, so its prefix length is the column's index.
  const match = /^(?:file:\/\/)?(.+?):(\d+)\r?\n[^\n]*\r?\n([ \t]*)\^/.exec(text);
  if (!match) return undefined;
  return { file: match[1]!, line: Number(match[2]), column: match[3]!.length + 1, message };
}

function nodeCheckLocation(file: string): SyntaxErrorLocation | undefined {
  const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10000 });
  if (check.status === 0 || typeof check.stderr !== 'string') return undefined;
  const message = /^SyntaxError: (.*)$/m.exec(check.stderr)?.[1];
  return message === undefined ? undefined : caretLocation(check.stderr, message);
}

function jsonLocation(file: string, message: string): SyntaxErrorLocation | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const position = /at position (\d+)/.exec(message)?.[1] ?? (/end of JSON input/.test(message) ? String(text.trimEnd().length) : undefined);
  if (position === undefined) return undefined;
  const before = text.slice(0, Number(position));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return { file, line, column, message: message.replace(/ in JSON at position \d+.*$/, '') };
}
