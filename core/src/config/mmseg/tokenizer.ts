import { SegkitError } from '../../errors';

/** A place in a `.py` config file, 1-based as editors and Python's tracebacks show it. */
export interface SourcePosition {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export type TokenKind = 'name' | 'number' | 'string' | 'op' | 'newline' | 'baseref' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** Names, operators and number literals: their text; strings: the decoded value; baseref: the dotted path. */
  readonly value: string;
  readonly line: number;
  readonly column: number;
  /** The token as written (string tokens keep their quotes and prefix). */
  readonly raw: string;
  /** Offsets of the token in the source: [offset, end). */
  readonly offset: number;
  readonly end: number;
}

export interface Comment {
  readonly line: number;
  readonly column: number;
  /** Without the leading `#`. */
  readonly text: string;
  /** True when nothing but whitespace precedes it on its line. */
  readonly ownLine: boolean;
  readonly offset: number;
}

export interface TokenizedSource {
  readonly tokens: Token[];
  readonly comments: Comment[];
}

/** A mistake in a `.py` config, reported as `file:line:column: message`. */
export function syntaxError(position: SourcePosition, message: string): SegkitError {
  return new SegkitError(`${position.file}:${position.line}:${position.column}: ${message}`);
}

// Longest first, so that `**` wins over `*` and `//=` over `//`.
const OPERATORS = [
  '**=', '//=', '>>=', '<<=', '...', '->', ':=',
  '**', '//', '==', '!=', '<=', '>=', '<<', '>>', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '@=',
  '+', '-', '*', '/', '%', '@', '<', '>', '=', '.', ',', ':', ';', '(', ')', '[', ']', '{', '}', '~', '&', '|', '^', '!',
];

const BASE_REFERENCE = /\{\{\s*_base_\.([\w.]+)\s*\}\}/y;
const DIGITS = String.raw`\d(?:_?\d)*`;
const EXPONENT = String.raw`[eE][+-]?${DIGITS}`;
const NUMBER = new RegExp(
  String.raw`(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|(?:${DIGITS})?\.${DIGITS}(?:${EXPONENT})?|${DIGITS}\.(?:${EXPONENT})?|${DIGITS}(?:${EXPONENT})?)[jJ]?`,
  'y',
);
const STRING_PREFIX = /([rRbBuUfF]{0,2})('''|"""|'|")/y;
const NAME_START = /[A-Za-z_\u00C0-\uFFFF]/;
const NAME = /[A-Za-z_\u00C0-\uFFFF][A-Za-z0-9_\u00C0-\uFFFF]*/y;

/** MMCV's predefined template variables, substituted inside strings as MMCV does before running the file. */
export function predefinedVariables(file: string): Record<string, string> {
  const normalized = file.replace(/\\/g, '/');
  const slash = normalized.lastIndexOf('/');
  const basename = normalized.slice(slash + 1);
  const dot = basename.lastIndexOf('.');
  return {
    fileDirname: normalized.slice(0, Math.max(0, slash)),
    fileBasename: basename,
    fileBasenameNoExtension: dot > 0 ? basename.slice(0, dot) : basename,
    fileExtname: dot > 0 ? basename.slice(dot) : '',
  };
}

/**
 * Splits a `.py` config into tokens: Python's lexical rules for the subset MMSegmentation configs use
 * (names, numbers, strings with every quote style, operators, comments, backslash and bracket line
 * continuations) plus MMCV's `{{_base_.name}}` reference as one token. One logical line ends with a
 * `newline` token; indentation at the start of a logical line is an error (configs have no blocks).
 */
export function tokenize(source: string, file: string): TokenizedSource {
  const tokens: Token[] = [];
  const comments: Comment[] = [];
  const templates = predefinedVariables(file);
  let index = 0;
  let line = 1;
  let lineStart = 0;
  let depth = 0;
  let atLogicalLineStart = true;
  const openers: Token[] = [];
  const position = (at: number): SourcePosition => ({ file, line, column: at - lineStart + 1 });
  const push = (kind: TokenKind, value: string, start: number, raw: string, startLine = line, startLineStart = lineStart) =>
    tokens.push({ kind, value, line: startLine, column: start - startLineStart + 1, raw, offset: start, end: start + raw.length });

  if (source.startsWith('\uFEFF')) index = 1;
  while (index < source.length) {
    const char = source[index]!;
    if (char === '\n' || char === '\r') {
      const length = char === '\r' && source[index + 1] === '\n' ? 2 : 1;
      if (depth === 0 && !atLogicalLineStart) {
        push('newline', '\n', index, '\n');
        atLogicalLineStart = true;
      }
      index += length;
      line += 1;
      lineStart = index;
      continue;
    }
    if (char === ' ' || char === '\t' || char === '\f') {
      index += 1;
      continue;
    }
    if (char === '#') {
      let end = source.indexOf('\n', index);
      if (end < 0) end = source.length;
      const text = source.slice(index + 1, end).replace(/\r$/, '');
      comments.push({ line, column: index - lineStart + 1, text, ownLine: source.slice(lineStart, index).trim() === '', offset: index });
      index = end;
      continue;
    }
    if (char === '\\') {
      const next = source[index + 1];
      if (next === '\n' || (next === '\r' && source[index + 2] === '\n')) {
        index += next === '\n' ? 2 : 3;
        line += 1;
        lineStart = index;
        continue;
      }
      throw syntaxError(position(index), "unexpected character '\\' (a line continuation must end its line)");
    }
    if (atLogicalLineStart && depth === 0) {
      const indent = source.slice(lineStart, index);
      if (indent.length > 0) {
        throw syntaxError({ file, line, column: 1 }, 'unexpected indent (a config file has no blocks: every statement starts at column 1)');
      }
      atLogicalLineStart = false;
    }

    BASE_REFERENCE.lastIndex = index;
    const reference = BASE_REFERENCE.exec(source);
    if (reference) {
      push('baseref', reference[1]!, index, reference[0]);
      index += reference[0].length;
      continue;
    }

    STRING_PREFIX.lastIndex = index;
    const stringStart = STRING_PREFIX.exec(source);
    if (stringStart && (stringStart[1] === '' || /^[rRbBuUfF]+$/.test(stringStart[1]!))) {
      const prefix = stringStart[1]!.toLowerCase();
      if (prefix.length === 0 || /^(r|u|b|f|rb|br|fr|rf)$/.test(prefix)) {
        const startLine = line;
        const startLineStart = lineStart;
        const start = index;
        if (prefix.includes('f')) throw syntaxError(position(index), 'f-strings are not supported in configs (write the string out)');
        if (prefix.includes('b')) throw syntaxError(position(index), 'bytes literals are not supported in configs');
        const quote = stringStart[2]!;
        const raw = prefix.includes('r');
        let cursor = index + stringStart[0].length;
        let value = '';
        let closed = false;
        while (cursor < source.length) {
          if (source.startsWith(quote, cursor)) {
            cursor += quote.length;
            closed = true;
            break;
          }
          const c = source[cursor]!;
          if (c === '\n' || c === '\r') {
            if (quote.length === 1) break;
            const length = c === '\r' && source[cursor + 1] === '\n' ? 2 : 1;
            value += '\n';
            cursor += length;
            line += 1;
            lineStart = cursor;
            continue;
          }
          if (c === '\\') {
            const escaped = decodeEscape(source, cursor, raw);
            if (escaped.newline) {
              line += 1;
              lineStart = cursor + escaped.length;
            }
            value += escaped.value;
            cursor += escaped.length;
            continue;
          }
          value += c;
          cursor += 1;
        }
        if (!closed) {
          throw syntaxError({ file, line: startLine, column: start - startLineStart + 1 }, `unterminated string literal (opened with ${quote})`);
        }
        for (const [key, replacement] of Object.entries(templates)) {
          value = value.replace(new RegExp(`\\{\\{\\s*${key}\\s*\\}\\}`, 'g'), replacement);
        }
        push('string', value, start, source.slice(start, cursor), startLine, startLineStart);
        index = cursor;
        continue;
      }
    }

    if (/[0-9]/.test(char) || (char === '.' && /[0-9]/.test(source[index + 1] ?? ''))) {
      NUMBER.lastIndex = index;
      const number = NUMBER.exec(source);
      const text = number?.[0] ?? char;
      if (/[jJ]$/.test(text)) throw syntaxError(position(index), `complex numbers are not supported in configs (found '${text}')`);
      if (/^0\d/.test(text.replace(/_/g, '')) && !/[.eE]/.test(text) && !/^0+$/.test(text.replace(/_/g, ''))) {
        throw syntaxError(position(index), `leading zeros in decimal integer literals are not permitted (found '${text}')`);
      }
      push('number', text, index, text);
      index += text.length;
      if (NAME_START.test(source[index] ?? '')) throw syntaxError(position(index), `invalid number literal '${text}${source[index]}'`);
      continue;
    }

    if (NAME_START.test(char)) {
      NAME.lastIndex = index;
      const name = NAME.exec(source)![0];
      push('name', name, index, name);
      index += name.length;
      continue;
    }

    const operator = OPERATORS.find((op) => source.startsWith(op, index));
    if (!operator) throw syntaxError(position(index), `unexpected character '${char}'`);
    if ('([{'.includes(operator)) {
      depth += 1;
      push('op', operator, index, operator);
      openers.push(tokens[tokens.length - 1]!);
    } else if (')]}'.includes(operator)) {
      const opener = openers.pop();
      const expected = opener ? { '(': ')', '[': ']', '{': '}' }[opener.value] : undefined;
      if (!opener || expected !== operator) {
        throw syntaxError(position(index), opener ? `'${operator}' does not match '${opener.value}' opened at line ${opener.line}:${opener.column}` : `unmatched '${operator}'`);
      }
      depth -= 1;
      push('op', operator, index, operator);
    } else {
      push('op', operator, index, operator);
    }
    index += operator.length;
  }
  const unclosed = openers.pop();
  if (unclosed) throw syntaxError({ file, line: unclosed.line, column: unclosed.column }, `'${unclosed.value}' was never closed`);
  if (!atLogicalLineStart) push('newline', '\n', index, '');
  push('eof', '', index, '');
  return { tokens, comments };
}

const SIMPLE_ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** One backslash escape of a (non-f) string literal, as Python reads it. */
function decodeEscape(source: string, at: number, raw: boolean): { value: string; length: number; newline: boolean } {
  const next = source[at + 1] ?? '';
  if (next === '\n' || (next === '\r' && source[at + 2] === '\n')) {
    const length = next === '\n' ? 2 : 3;
    return { value: raw ? source.slice(at, at + length).replace('\r', '') : '', length, newline: true };
  }
  if (raw) return { value: `\\${next}`, length: 2, newline: false };
  if (next in SIMPLE_ESCAPES) return { value: SIMPLE_ESCAPES[next]!, length: 2, newline: false };
  const hex = (digits: number) => {
    const text = source.slice(at + 2, at + 2 + digits);
    return /^[0-9a-fA-F]+$/.test(text) && text.length === digits ? String.fromCodePoint(parseInt(text, 16)) : undefined;
  };
  if (next === 'x' || next === 'u' || next === 'U') {
    const digits = { x: 2, u: 4, U: 8 }[next];
    const value = hex(digits);
    if (value !== undefined) return { value, length: 2 + digits, newline: false };
  }
  const octal = /^[0-7]{1,3}/.exec(source.slice(at + 1, at + 4));
  if (octal) return { value: String.fromCodePoint(parseInt(octal[0], 8)), length: 1 + octal[0].length, newline: false };
  // Python keeps unknown escapes as written (with a warning).
  return { value: `\\${next}`, length: 2, newline: false };
}
