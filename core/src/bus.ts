import { Observable, Subject, Subscription, filter, type Observer, type Operator } from 'rxjs';

/** Learning rates of the optimizer's parameter groups, as logged. */
export interface GroupLr {
  readonly group: number;
  /** The custom key (or rule) that gave the group its settings, e.g. 'head'; undefined for the base settings. */
  readonly key?: string;
  readonly lr: number;
}

/** Every training event, as one discriminated union on `type`. */
export type SegkitEvent =
  | { type: 'run:start'; maxIters: number; startIter: number; workDir: string; config: Record<string, unknown>; backend: string }
  | { type: 'iter:start'; iter: number }
  | {
      type: 'iter:end';
      /** 1-based count of finished iterations. */
      iter: number;
      maxIters: number;
      losses: Readonly<Record<string, number>>;
      lrs: readonly GroupLr[];
      dataTime: number;
      stepTime: number;
      memory: { numTensors: number; numBytes: number; rssMB: number };
    }
  | {
      type: 'eval:end';
      iter: number;
      metrics: Readonly<Record<string, number>>;
      classTable: readonly Readonly<Record<string, string | number>>[];
    }
  | { type: 'checkpoint:saved'; iter: number; path: string; best?: string }
  | { type: 'run:end'; iter: number; workDir: string }
  | { type: 'run:error'; iter: number; error: Error }
  | { type: 'hook:error'; hook: string; event: string; error: Error; repeats?: number }
  | { type: 'log'; level: 'info' | 'warn'; message: string };

export type SegkitEventType = SegkitEvent['type'];
export type EventOf<K extends SegkitEventType> = Extract<SegkitEvent, { type: K }>;

/** Handlers by event type, for `EventBus.subscribeHandlers`. */
export type EventHandlers = { [K in SegkitEventType]?: (event: EventOf<K>) => void };

/** Consecutive failures after which a hook is switched off for the rest of the run. */
export const HOOK_FAILURE_LIMIT = 20;

/**
 * An observable of bus events whose subscribers are isolated from the run: an error thrown in a
 * subscriber's handler (even after `pipe(...)`) is reported as `hook:error` instead of being re-thrown
 * by RxJS on a timer, which would kill the process.
 */
class IsolatedObservable<T> extends Observable<T> {
  constructor(
    private readonly report: (error: unknown) => void,
    subscribe?: (subscriber: import('rxjs').Subscriber<T>) => import('rxjs').TeardownLogic,
  ) {
    super(subscribe);
  }

  // RxJS's operators build their result through `lift`, so piped observables stay isolated too.
  override lift<R>(operator?: Operator<T, R>): Observable<R> {
    const lifted = new IsolatedObservable<R>(this.report);
    lifted.source = this;
    lifted.operator = operator;
    return lifted;
  }

  override subscribe(observerOrNext?: Partial<Observer<T>> | ((value: T) => void) | null): Subscription {
    const guard = (handler: ((value: T) => void) | undefined) =>
      handler &&
      ((value: T) => {
        try {
          handler(value);
        } catch (error) {
          this.report(error);
        }
      });
    if (typeof observerOrNext === 'function') return super.subscribe(guard(observerOrNext));
    if (observerOrNext) return super.subscribe({ ...observerOrNext, next: guard(observerOrNext.next?.bind(observerOrNext)) });
    return super.subscribe();
  }
}

/**
 * The training event bus: every lifecycle point is published here for observers (loggers, progress,
 * user code). Subscribers are isolated however they subscribe — `bus.subscribe(hook, type, handler)` or
 * plain RxJS on `bus.on(type)`: a throwing handler becomes one `hook:error` event, identical repeats are
 * counted instead of re-published, and a hook that fails HOOK_FAILURE_LIMIT times in a row is switched off.
 */
export class EventBus {
  private readonly subject = new Subject<SegkitEvent>();
  private readonly repeats = new Map<string, { hook: string; event: string; message: string; count: number }>();
  private readonly consecutiveFailures = new Map<string, number>();
  private readonly disabled = new Set<string>();

  emit(event: SegkitEvent): void {
    this.subject.next(event);
  }

  /** All events, or those of one type, as a typed observable (its subscribers are isolated). */
  on<K extends SegkitEventType>(type: K): Observable<EventOf<K>>;
  on(): Observable<SegkitEvent>;
  on(type?: SegkitEventType): Observable<SegkitEvent> {
    const events = type ? this.subject.pipe(filter((event) => event.type === type)) : this.subject.asObservable();
    const eventName = type ?? '*';
    return new IsolatedObservable<SegkitEvent>(
      (error) => this.reportHookError('a bus.on() subscriber', eventName, error),
      (subscriber) => events.subscribe(subscriber),
    );
  }

  /** Subscribes a hook's handler; errors inside it are reported as `hook:error`, never thrown. */
  subscribe<K extends SegkitEventType>(hookName: string, type: K, handler: (event: EventOf<K>) => void): Subscription {
    return this.subject.pipe(filter((event): event is EventOf<K> => event.type === type)).subscribe((event) => {
      if (this.disabled.has(hookName)) return;
      try {
        handler(event);
        this.recordSuccess(hookName);
      } catch (error) {
        this.reportHookError(hookName, type, error);
      }
    });
  }

  /** Subscribes several handlers of one hook at once (one per event type); one Subscription releases them all. */
  subscribeHandlers(hookName: string, handlers: EventHandlers): Subscription {
    const all = new Subscription();
    for (const type of Object.keys(handlers) as SegkitEventType[]) {
      all.add(this.subscribe(hookName, type, handlers[type] as (event: SegkitEvent) => void));
    }
    return all;
  }

  /** Whether a hook was switched off after failing too often in a row. */
  isDisabled(hookName: string): boolean {
    return this.disabled.has(hookName);
  }

  recordSuccess(hookName: string): void {
    this.consecutiveFailures.delete(hookName);
  }

  /**
   * Reports a hook failure: the first occurrence of an error message is published as `hook:error`; the same
   * error again is only counted (see `flushRepeatedErrors`); after HOOK_FAILURE_LIMIT consecutive failures
   * the hook is switched off with one message.
   */
  reportHookError(hookName: string, eventType: string, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    if (eventType === 'hook:error') {
      // A hook failing on hook:error must not recurse; fall back to stderr.
      console.error(`hook ${hookName} failed while handling hook:error: ${err.message}`);
      return;
    }
    const failures = (this.consecutiveFailures.get(hookName) ?? 0) + 1;
    this.consecutiveFailures.set(hookName, failures);
    const key = `${hookName}\u0000${eventType}\u0000${err.message}`;
    const seen = this.repeats.get(key);
    if (seen) seen.count += 1;
    else {
      this.repeats.set(key, { hook: hookName, event: eventType, message: err.message, count: 0 });
      this.emit({ type: 'hook:error', hook: hookName, event: eventType, error: err });
    }
    if (failures === HOOK_FAILURE_LIMIT && !this.disabled.has(hookName)) {
      this.disabled.add(hookName);
      this.emit({ type: 'log', level: 'warn', message: `hook ${hookName} failed ${failures} times in a row and is switched off for the rest of the run` });
    }
  }

  /** Publishes one summary line per error that repeated since the last flush, then forgets them. */
  flushRepeatedErrors(): void {
    for (const { hook, event, message, count } of this.repeats.values()) {
      if (count > 0) this.emit({ type: 'hook:error', hook, event, error: new Error(message), repeats: count });
    }
    this.repeats.clear();
    this.consecutiveFailures.clear();
    this.disabled.clear();
  }

  complete(): void {
    this.subject.complete();
  }
}
