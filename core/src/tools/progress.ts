import { SingleBar } from 'cli-progress';

/** What the progress module writes to: a process stream, or a fake one in tests. */
export interface ProgressStream {
  write(chunk: string | Uint8Array, ...rest: any[]): boolean;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Names the work in every line, e.g. `test`, `evaluation`, `synth`. */
  label: string;
  total: number;
  /** What is counted, e.g. `images` (plain lines and the bar). */
  unit?: string;
  /** Nothing at all (`--quiet`). */
  quiet?: boolean;
  /** Where the bar or the lines go (default stderr, so stdout stays clean for results). */
  stream?: ProgressStream;
  /** Draw a bar (default: when `stream` is a terminal). */
  tty?: boolean;
  /** Without a terminal: plain lines (default), or nothing (for output that is logged elsewhere already). */
  whenNotTty?: 'lines' | 'silent';
  /** Plain lines: one each time another `percentStep` % is done (default 10)... */
  percentStep?: number;
  /** ...or when `lineEverySeconds` passed since the last line (default 30). */
  lineEverySeconds?: number;
  /** Bar width in characters (default 30). */
  barWidth?: number;
  /** Count already done when starting (a resumed run). */
  startValue?: number;
  /**
   * Streams whose writes go above the bar while it is drawn, besides the bar's own stream (default: stdout
   * and stderr when they are terminals). Lines printed by loggers never join the bar's line.
   */
  interceptStreams?: ProgressStream[];
  /** Seconds since some origin (tests use a fake clock). */
  clock?: () => number;
}

export interface Progress {
  /** `done` of `total` finished; `suffix` is shown after the counts (e.g. `loss 0.4321`). */
  update(done: number, suffix?: string): void;
  increment(suffix?: string): void;
  /** Ends the bar (its line is cleared) and prints one final line unless quiet or silent. */
  stop(): void;
}

/** `h:mm:ss` (`d day(s), h:mm:ss` past a day), as MMCV prints an ETA. */
export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(Number.isFinite(seconds) ? seconds : 0));
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  const days = Math.floor(h / 24);
  const clock = `${h % 24}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  return days ? `${days} day${days > 1 ? 's' : ''}, ${clock}` : clock;
}

const systemClock = (): number => performance.now() / 1000;

/** The plain-line form, e.g. `test: 50/100 images (50%), elapsed 0:00:10, eta 0:00:10`. */
export function formatProgressLine(label: string, done: number, total: number, unit: string | undefined, elapsedSeconds: number, suffix = ''): string {
  const percent = total > 0 ? Math.floor((100 * done) / total) : 100;
  const perItem = done > 0 ? elapsedSeconds / done : 0;
  const eta = done > 0 ? `, eta ${formatDuration(perItem * (total - done))}` : '';
  return `${label}: ${done}/${total}${unit ? ` ${unit}` : ''} (${percent}%), elapsed ${formatDuration(elapsedSeconds)}${eta}${suffix ? `, ${suffix}` : ''}`;
}

type WriteFunction = ProgressStream['write'];

/** A bar on a terminal; several may nest (evaluation inside training): only the innermost is drawn. */
class TerminalBar {
  private bar: SingleBar | undefined;
  private value: number;
  private suffix = '';

  constructor(
    private readonly options: ProgressOptions,
    /** Writes to the bar's stream that bypass the interception. */
    readonly rawWrite: (text: string) => void,
  ) {
    this.value = options.startValue ?? 0;
  }

  show(): void {
    if (this.bar) return;
    const { options } = this;
    const stream = options.stream ?? process.stderr;
    // cli-progress writes through this proxy, so its own output is never taken for a log line.
    const proxy = { isTTY: true, get columns() { return stream.columns ?? 80; }, write: (text: string) => (this.rawWrite(text), true) };
    this.bar = new SingleBar({
      stream: proxy as unknown as NodeJS.WritableStream,
      format: `${options.label} [{bar}] {value}/{total}${options.unit ? ` ${options.unit}` : ''} | {percentage}% | eta {eta_formatted}{suffix}`,
      barsize: options.barWidth ?? 30,
      barCompleteChar: '=',
      barIncompleteChar: ' ',
      clearOnComplete: true,
      hideCursor: false,
      etaBuffer: 50,
      formatTime: (seconds: number) => formatDuration(seconds),
    });
    this.bar.start(options.total, this.value, { suffix: this.suffix });
  }

  /** Clears the bar's line and stops drawing (another bar takes over, or the work is done). */
  hide(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  /** Draws the bar again at once (after a log line was printed above it). */
  redraw(): void {
    (this.bar as unknown as { render?(): void } | undefined)?.render?.();
  }

  update(done: number, suffix: string): void {
    this.value = done;
    this.suffix = suffix ? `  ${suffix}` : '';
    this.bar?.update(done, { suffix: this.suffix });
  }
}

/** Bars being drawn, innermost last; the interception of log writes is installed while there is one. */
const activeBars: TerminalBar[] = [];
const patchedStreams = new Map<ProgressStream, WriteFunction>();

function endsWithNewline(chunk: unknown): boolean {
  if (typeof chunk === 'string') return chunk.endsWith('\n');
  if (chunk instanceof Uint8Array) return chunk.length > 0 && chunk[chunk.length - 1] === 0x0a;
  return true;
}

/** Writes to `stream` while a bar is drawn: clear the bar's line, print the text as a whole line, redraw the bar. */
function interceptWrites(streams: ProgressStream[]): void {
  for (const stream of streams) {
    if (patchedStreams.has(stream)) continue;
    const original = stream.write;
    patchedStreams.set(stream, original);
    stream.write = function (this: ProgressStream, chunk: string | Uint8Array, ...rest: any[]): boolean {
      const top = activeBars[activeBars.length - 1];
      if (!top) return original.call(stream, chunk, ...rest);
      top.rawWrite('\r\x1b[2K');
      const result = original.call(stream, chunk, ...rest);
      if (!endsWithNewline(chunk)) original.call(stream, '\n');
      top.redraw();
      return result;
    } as WriteFunction;
  }
}

function restoreWrites(): void {
  for (const [stream, original] of patchedStreams) stream.write = original;
  patchedStreams.clear();
}

/** The writer that reaches `stream` itself, even while its writes are intercepted. */
function rawWriter(stream: ProgressStream): (text: string) => void {
  return (text) => {
    const write = patchedStreams.get(stream) ?? stream.write;
    write.call(stream, text);
  };
}

/**
 * Progress of a long command, one mechanism for all: a cli-progress bar on a terminal (log lines printed
 * meanwhile go above it), plain periodic lines otherwise (CI logs), nothing when quiet.
 */
export function startProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const clock = options.clock ?? systemClock;
  const started = clock();
  const total = Math.max(0, options.total);
  const write = rawWriter(stream);
  const startValue = options.startValue ?? 0;
  let done = startValue;
  let lastSuffix = '';
  let stopped = false;

  if (options.quiet) {
    const noop = { update: () => undefined, increment: () => undefined, stop: () => undefined };
    return noop;
  }

  const tty = options.tty ?? stream.isTTY === true;
  if (tty) {
    const bar = new TerminalBar(options, write);
    activeBars[activeBars.length - 1]?.hide();
    activeBars.push(bar);
    // Other writes to the bar's own stream always go above it; stdout and stderr too when they are terminals.
    interceptWrites([stream, ...(options.interceptStreams ?? [process.stdout, process.stderr].filter((s) => s.isTTY))].filter((s, i, all) => all.indexOf(s) === i));
    bar.show();
    return {
      update(value, suffix = '') {
        done = value;
        lastSuffix = suffix;
        bar.update(value, suffix);
      },
      increment(suffix) {
        this.update(done + 1, suffix ?? lastSuffix);
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.hide();
        const index = activeBars.indexOf(bar);
        if (index >= 0) activeBars.splice(index, 1);
        if (activeBars.length === 0) restoreWrites();
        write(`${formatProgressLine(options.label, done, total, options.unit, clock() - started, lastSuffix)}\n`);
        activeBars[activeBars.length - 1]?.show();
      },
    };
  }

  if (options.whenNotTty === 'silent') return { update: () => undefined, increment: () => undefined, stop: () => undefined };
  const percentStep = options.percentStep ?? 10;
  const everySeconds = options.lineEverySeconds ?? 30;
  let lastLineAt = started;
  let lastStep = total > 0 ? Math.floor((100 * startValue) / total / percentStep) : 0;
  let lastPrinted = -1;
  const print = () => {
    lastPrinted = done;
    lastLineAt = clock();
    write(`${formatProgressLine(options.label, done, total, options.unit, lastLineAt - started, lastSuffix)}\n`);
  };
  return {
    update(value, suffix = '') {
      done = value;
      lastSuffix = suffix;
      const step = total > 0 ? Math.floor((100 * done) / total / percentStep) : 0;
      if (step > lastStep || clock() - lastLineAt >= everySeconds) {
        lastStep = Math.max(step, lastStep);
        print();
      }
    },
    increment(suffix) {
      this.update(done + 1, suffix ?? lastSuffix);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (lastPrinted !== done) print();
    },
  };
}
