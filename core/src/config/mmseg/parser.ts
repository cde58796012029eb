import { syntaxError, tokenize, type Comment, type SourcePosition, type Token } from './tokenizer';

/** Where a node starts (for errors) and its source span (for comments in the converted `.ts`). */
export interface NodeBase {
  readonly line: number;
  readonly column: number;
  readonly offset: number;
  readonly end: number;
}

export type Expression =
  | (NodeBase & { kind: 'number'; text: string })
  | (NodeBase & { kind: 'string'; value: string })
  | (NodeBase & { kind: 'constant'; value: boolean | null })
  | (NodeBase & { kind: 'name'; name: string })
  | (NodeBase & { kind: 'baseref'; path: string[] })
  | (NodeBase & { kind: 'list' | 'tuple'; items: SequenceItem[]; trailingComments: Comment[] })
  | (NodeBase & { kind: 'dict'; entries: DictEntry[]; trailingComments: Comment[]; form: 'call' | 'literal' })
  | (NodeBase & { kind: 'unary'; operator: '-' | '+'; operand: Expression })
  | (NodeBase & { kind: 'binary'; operator: BinaryOperator; left: Expression; right: Expression });

export type BinaryOperator = '+' | '-' | '*' | '/' | '//' | '%' | '**';

export interface SequenceItem {
  readonly value: Expression;
  /** `*name` inside a list or tuple display. */
  readonly starred: boolean;
  readonly comments: Comment[];
}

export type DictEntry =
  | { readonly kind: 'pair'; readonly key: Expression; readonly value: Expression; readonly comments: Comment[]; readonly keyword: boolean }
  /** `**mapping`, or the positional mapping of `dict(mapping, ...)` (`positional`, which keywords may override). */
  | { readonly kind: 'spread'; readonly value: Expression; readonly comments: Comment[]; readonly positional: boolean };

export interface Assignment extends NodeBase {
  readonly kind: 'assign';
  readonly target: string;
  readonly value: Expression;
  readonly comments: Comment[];
}

export interface ParsedModule {
  readonly file: string;
  readonly source: string;
  readonly statements: Assignment[];
  readonly trailingComments: Comment[];
}

const STATEMENT_KEYWORDS = new Set([
  'import', 'from', 'def', 'class', 'if', 'elif', 'else', 'for', 'while', 'with', 'try', 'except', 'finally', 'return', 'raise',
  'del', 'global', 'nonlocal', 'assert', 'pass', 'break', 'continue', 'async', 'await', 'yield', 'lambda', 'match',
]);
const EXPRESSION_KEYWORDS = new Set(['and', 'or', 'not', 'in', 'is', 'if', 'else', 'for', 'lambda', 'await', 'yield']);
const RESERVED = new Set([...STATEMENT_KEYWORDS, ...EXPRESSION_KEYWORDS, 'True', 'False', 'None', 'as']);
RESERVED.delete('match'); // a soft keyword: a valid variable name

const ARITHMETIC: Record<string, BinaryOperator> = { '+': '+', '-': '-', '*': '*', '/': '/', '//': '//', '%': '%' };
const UNSUPPORTED_OPERATORS: Record<string, string> = {
  '==': 'comparisons', '!=': 'comparisons', '<': 'comparisons', '>': 'comparisons', '<=': 'comparisons', '>=': 'comparisons',
  '&': 'bitwise operators', '|': 'bitwise operators', '^': 'bitwise operators', '<<': 'bitwise operators', '>>': 'bitwise operators', '~': 'bitwise operators',
  '@': 'matrix multiplication', ':=': 'assignment expressions',
};

/**
 * Parses the Python subset of MMSegmentation 0.x configs: a module of `name = expression` statements
 * whose expressions are literals, names bound earlier, `dict(...)`, `{...}`, lists, tuples, arithmetic
 * and `{{_base_.name}}`. Anything else is an error at its file:line:column naming what was found.
 */
export function parseModule(source: string, file: string): ParsedModule {
  const { tokens, comments } = tokenize(source, file);
  return new Parser(tokens, comments, file, source).module();
}

class Parser {
  private index = 0;
  private commentIndex = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly comments: Comment[],
    private readonly file: string,
    private readonly source: string,
  ) {}

  module(): ParsedModule {
    const statements: Assignment[] = [];
    while (this.peek().kind !== 'eof') {
      if (this.peek().kind === 'newline') {
        this.index += 1;
        continue;
      }
      statements.push(this.statement());
      while (this.isOp(';')) {
        this.index += 1;
        if (this.peek().kind === 'newline' || this.peek().kind === 'eof') break;
        statements.push(this.statement());
      }
      const end = this.peek();
      if (end.kind !== 'newline' && end.kind !== 'eof') throw this.unexpected(end, 'the end of the statement');
    }
    return { file: this.file, source: this.source, statements, trailingComments: this.takeComments(Infinity) };
  }

  private statement(): Assignment {
    const first = this.peek();
    const comments = this.takeComments(first.offset);
    if (first.kind === 'name' && STATEMENT_KEYWORDS.has(first.value) && !(first.value === 'match' && this.isOpAt(this.index + 1, '='))) {
      if (first.value === 'import' || first.value === 'from') {
        throw this.error(first, `import statements are not supported in configs (found '${this.lineText(first)}'); list plugins in custom_imports instead`);
      }
      throw this.error(first, `'${first.value}' statements are not supported in configs: a config is a list of name = value assignments`);
    }
    if (first.kind !== 'name' || RESERVED.has(first.value)) {
      const expression = this.expression();
      if (this.isOp('=')) throw this.error(first, `cannot assign to ${this.describe(expression)}: only plain names can be assigned`);
      throw this.error(first, `expected an assignment (name = value), found the expression '${this.text(expression)}'`);
    }
    const next = this.tokens[this.index + 1]!;
    if (next.kind === 'op' && next.value === '=') {
      this.index += 2;
      const value = this.expression();
      if (this.isOp('=')) throw this.error(this.peek(), 'chained assignments (a = b = value) are not supported in configs');
      if (this.isOp(',')) throw this.error(this.peek(), `unparenthesized tuples are not supported in configs; write ${first.value} = (...)`);
      return { kind: 'assign', target: first.value, value, comments, line: first.line, column: first.column, offset: first.offset, end: value.end };
    }
    if (next.kind === 'op' && /^(\+|-|\*|\/|\/\/|%|\*\*|@|&|\||\^|<<|>>)=$/.test(next.value)) {
      throw this.error(next, `augmented assignment '${next.value}' is not supported in configs; write ${first.value} = ${first.value} ${next.value.slice(0, -1)} ...`);
    }
    if (next.kind === 'op' && next.value === ':') throw this.error(next, 'annotated assignments (name: type = value) are not supported in configs');
    if (next.kind === 'op' && next.value === ',') throw this.error(next, 'tuple unpacking (a, b = ...) is not supported in configs');
    const expression = this.expression();
    if (this.isOp('=')) throw this.error(first, `cannot assign to ${this.describe(expression)}: only plain names can be assigned`);
    throw this.error(first, `expected an assignment (name = value), found the expression '${this.text(expression)}'`);
  }

  expression(): Expression {
    const expression = this.arithmetic();
    const next = this.peek();
    if (next.kind === 'name' && EXPRESSION_KEYWORDS.has(next.value)) {
      const what = next.value === 'if' || next.value === 'else' ? 'conditional expressions' : next.value === 'for' ? 'comprehensions' : `'${next.value}' expressions`;
      throw this.error(next, `${what} are not supported in configs (found '${next.value}')`);
    }
    if (next.kind === 'op' && next.value in UNSUPPORTED_OPERATORS) {
      throw this.error(next, `${UNSUPPORTED_OPERATORS[next.value]} are not supported in configs (found '${next.value}')`);
    }
    return expression;
  }

  private arithmetic(): Expression {
    let left = this.term();
    while (this.isOp('+') || this.isOp('-')) {
      const operator = this.next().value as BinaryOperator;
      const right = this.term();
      left = { kind: 'binary', operator, left, right, ...this.span(left, right) };
    }
    return left;
  }

  private term(): Expression {
    let left = this.factor();
    while (this.peek().kind === 'op' && ['*', '/', '//', '%'].includes(this.peek().value)) {
      const operator = ARITHMETIC[this.next().value]!;
      const right = this.factor();
      left = { kind: 'binary', operator, left, right, ...this.span(left, right) };
    }
    return left;
  }

  private factor(): Expression {
    const token = this.peek();
    if (token.kind === 'op' && (token.value === '-' || token.value === '+')) {
      this.index += 1;
      const operand = this.factor();
      return { kind: 'unary', operator: token.value, operand, line: token.line, column: token.column, offset: token.offset, end: operand.end };
    }
    if (token.kind === 'name' && token.value === 'not') throw this.error(token, "'not' expressions are not supported in configs (found 'not')");
    return this.power();
  }

  private power(): Expression {
    const base = this.primary();
    if (this.isOp('**')) {
      this.index += 1;
      const exponent = this.factor();
      return { kind: 'binary', operator: '**', left: base, right: exponent, ...this.span(base, exponent) };
    }
    return base;
  }

  /** An atom and what may follow it: only `dict(...)` calls; attributes, subscripts and other calls are errors. */
  private primary(): Expression {
    const start = this.peek();
    const atom = this.atom();
    const next = this.peek();
    if (next.kind !== 'op') return atom;
    if (next.value === '(') {
      if (atom.kind === 'name' && atom.name === 'dict') return this.dictCall(atom);
      const callee = this.text(atom);
      throw this.error(start, `function calls other than dict(...) are not supported in configs (found '${callee}(')`);
    }
    if (next.value === '.') {
      const attribute = this.tokens[this.index + 1];
      const name = attribute?.kind === 'name' ? `.${attribute.value}` : '.';
      throw this.error(start, `attribute access is not supported in configs (found '${this.text(atom)}${name}'); use {{_base_.name}} to refer to a base's value`);
    }
    if (next.value === '[') throw this.error(start, `subscripts are not supported in configs (found '${this.text(atom)}[')`);
    return atom;
  }

  private atom(): Expression {
    const token = this.next();
    const at = { line: token.line, column: token.column, offset: token.offset, end: token.end };
    switch (token.kind) {
      case 'number':
        return { kind: 'number', text: token.value, ...at };
      case 'string': {
        // Adjacent string literals are one string (implicit concatenation).
        let value = token.value;
        let end = token.end;
        while (this.peek().kind === 'string') {
          const part = this.next();
          value += part.value;
          end = part.end;
        }
        return { kind: 'string', value, ...at, end };
      }
      case 'baseref':
        return { kind: 'baseref', path: token.value.split('.'), ...at };
      case 'name':
        if (token.value === 'True' || token.value === 'False') return { kind: 'constant', value: token.value === 'True', ...at };
        if (token.value === 'None') return { kind: 'constant', value: null, ...at };
        if (token.value === 'lambda') throw this.error(token, "lambda expressions are not supported in configs (found 'lambda')");
        if (RESERVED.has(token.value)) throw this.error(token, `expected a value, found the keyword '${token.value}'`);
        return { kind: 'name', name: token.value, ...at };
      case 'op':
        if (token.value === '(') return this.parenthesized(token);
        if (token.value === '[') return this.sequence(token, ']', 'list');
        if (token.value === '{') return this.braces(token);
        if (token.value === '...') throw this.error(token, "Ellipsis ('...') is not supported in configs");
        throw this.unexpected(token, 'a value');
      default:
        throw this.unexpected(token, 'a value');
    }
  }

  private parenthesized(open: Token): Expression {
    if (this.isOp(')')) return this.sequence(open, ')', 'tuple');
    const comments = this.takeComments(this.peek().offset);
    if (this.isOp('*')) return this.sequence(open, ')', 'tuple', comments);
    const inner = this.expression();
    if (this.isOp(')')) {
      const close = this.next();
      // Keep the parentheses in the span so that the source text of `(1 + 2) * 3` stays intact.
      return { ...inner, offset: open.offset, end: close.end, line: open.line, column: open.column };
    }
    if (this.isOp(',')) return this.sequence(open, ')', 'tuple', comments, { value: inner, starred: false, comments });
    throw this.unexpected(this.peek(), "',' or ')'");
  }

  private sequence(open: Token, close: string, kind: 'list' | 'tuple', firstComments?: Comment[], first?: SequenceItem): Expression {
    const items: SequenceItem[] = [];
    if (first) {
      items.push(first);
      this.expectOp(',');
    }
    let pending = firstComments && !first ? firstComments : undefined;
    while (!this.isOp(close)) {
      const comments = [...(pending ?? []), ...this.takeComments(this.peek().offset)];
      pending = undefined;
      const starred = this.isOp('*');
      if (starred) this.index += 1;
      const value = this.expression();
      if (this.peek().kind === 'name' && this.peek().value === 'for') throw this.error(this.peek(), "comprehensions are not supported in configs (found 'for')");
      items.push({ value, starred, comments });
      if (this.isOp(close)) break;
      this.expectOp(',');
    }
    const trailingComments = this.takeComments(this.peek().offset);
    const end = this.next();
    return { kind, items, trailingComments, line: open.line, column: open.column, offset: open.offset, end: end.end };
  }

  private braces(open: Token): Expression {
    const entries: DictEntry[] = [];
    while (!this.isOp('}')) {
      const comments = this.takeComments(this.peek().offset);
      if (this.isOp('**')) {
        this.index += 1;
        entries.push({ kind: 'spread', value: this.expression(), comments, positional: false });
      } else {
        const key = this.expression();
        if (this.isOp(',') || this.isOp('}')) throw this.error(key, `set literals are not supported in configs (found '{${this.text(key)}'); a dict needs key: value`);
        if (this.peek().kind === 'name' && this.peek().value === 'for') throw this.error(this.peek(), "comprehensions are not supported in configs (found 'for')");
        this.expectOp(':');
        const value = this.expression();
        if (this.peek().kind === 'name' && this.peek().value === 'for') throw this.error(this.peek(), "comprehensions are not supported in configs (found 'for')");
        entries.push({ kind: 'pair', key, value, comments, keyword: false });
      }
      if (this.isOp('}')) break;
      this.expectOp(',');
    }
    const trailingComments = this.takeComments(this.peek().offset);
    const close = this.next();
    return { kind: 'dict', form: 'literal', entries, trailingComments, line: open.line, column: open.column, offset: open.offset, end: close.end };
  }

  /** `dict(key=value, **mapping)`, or `dict(mapping, key=value)`. */
  private dictCall(callee: Expression): Expression {
    this.expectOp('(');
    const entries: DictEntry[] = [];
    const seen = new Set<string>();
    let keywordSeen = false;
    while (!this.isOp(')')) {
      const comments = this.takeComments(this.peek().offset);
      const token = this.peek();
      if (this.isOp('**')) {
        this.index += 1;
        entries.push({ kind: 'spread', value: this.expression(), comments, positional: false });
        keywordSeen = true;
      } else if (token.kind === 'name' && this.isOpAt(this.index + 1, '=')) {
        if (RESERVED.has(token.value)) throw this.error(token, `'${token.value}' is a keyword and cannot be a keyword argument`);
        if (seen.has(token.value)) throw this.error(token, `keyword argument repeated: ${token.value}`);
        seen.add(token.value);
        this.index += 2;
        const value = this.expression();
        const key: Expression = { kind: 'string', value: token.value, line: token.line, column: token.column, offset: token.offset, end: token.end };
        entries.push({ kind: 'pair', key, value, comments, keyword: true });
        keywordSeen = true;
      } else {
        if (keywordSeen) throw this.error(token, 'positional argument follows keyword argument');
        if (entries.length > 0) throw this.error(token, 'dict() takes at most one positional argument');
        const value = this.expression();
        if (this.peek().kind === 'name' && this.peek().value === 'for') throw this.error(this.peek(), "comprehensions are not supported in configs (found 'for')");
        entries.push({ kind: 'spread', value, comments, positional: true });
      }
      if (this.isOp(')')) break;
      this.expectOp(',');
    }
    const trailingComments = this.takeComments(this.peek().offset);
    const close = this.next();
    return { kind: 'dict', form: 'call', entries, trailingComments, line: callee.line, column: callee.column, offset: callee.offset, end: close.end };
  }

  private takeComments(before: number): Comment[] {
    const taken: Comment[] = [];
    while (this.commentIndex < this.comments.length && this.comments[this.commentIndex]!.offset < before) {
      taken.push(this.comments[this.commentIndex]!);
      this.commentIndex += 1;
    }
    return taken;
  }

  private span(first: NodeBase, last: NodeBase): NodeBase {
    return { line: first.line, column: first.column, offset: first.offset, end: last.end };
  }

  private peek(): Token {
    return this.tokens[this.index]!;
  }

  private next(): Token {
    const token = this.tokens[this.index]!;
    if (token.kind !== 'eof') this.index += 1;
    return token;
  }

  private isOp(value: string): boolean {
    return this.isOpAt(this.index, value);
  }

  private isOpAt(index: number, value: string): boolean {
    const token = this.tokens[index];
    return token !== undefined && token.kind === 'op' && token.value === value;
  }

  private expectOp(value: string): void {
    if (!this.isOp(value)) throw this.unexpected(this.peek(), `'${value}'`);
    this.index += 1;
  }

  private text(node: NodeBase): string {
    const text = this.source.slice(node.offset, node.end).replace(/\s+/g, ' ');
    return text.length > 40 ? `${text.slice(0, 37)}...` : text;
  }

  private lineText(token: Token): string {
    const end = this.source.indexOf('\n', token.offset);
    return this.source.slice(token.offset, end < 0 ? undefined : end).trim();
  }

  private describe(expression: Expression): string {
    return `'${this.text(expression)}'`;
  }

  private error(at: { line: number; column: number }, message: string) {
    return syntaxError(this.position(at), message);
  }

  private unexpected(token: Token, expected: string) {
    const found = token.kind === 'eof' ? 'the end of the file' : token.kind === 'newline' ? 'the end of the line' : `'${token.raw}'`;
    return this.error(token, `expected ${expected}, found ${found}`);
  }

  private position(at: { line: number; column: number }): SourcePosition {
    return { file: this.file, line: at.line, column: at.column };
  }
}
