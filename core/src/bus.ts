import { Subject, filter, type Observable, type Subscription } from 'rxjs';

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
  | { type: 'hook:error'; hook: string; event: string; error: Error }
  | { type: 'log'; level: 'info' | 'warn'; message: string };

export type SegkitEventType = SegkitEvent['type'];
export type EventOf<K extends SegkitEventType> = Extract<SegkitEvent, { type: K }>;

/**
 * The training event bus. Hooks subscribe through `subscribe`, which wraps their handler so that a
 * throwing hook becomes a `hook:error` event (RxJS would otherwise re-throw it asynchronously and kill the process).
 */
export class EventBus {
  private readonly subject = new Subject<SegkitEvent>();

  emit(event: SegkitEvent): void {
    this.subject.next(event);
  }

  /** All events, or those of one type, as a typed observable. */
  on<K extends SegkitEventType>(type: K): Observable<EventOf<K>>;
  on(): Observable<SegkitEvent>;
  on(type?: SegkitEventType): Observable<SegkitEvent> {
    const events = this.subject.asObservable();
    return type ? events.pipe(filter((event) => event.type === type)) : events;
  }

  /** Subscribes a hook's handler; errors inside it are reported as `hook:error`, never thrown. */
  subscribe<K extends SegkitEventType>(hookName: string, type: K, handler: (event: EventOf<K>) => void): Subscription {
    return this.on(type).subscribe((event) => {
      try {
        handler(event);
      } catch (error) {
        this.reportHookError(hookName, type, error);
      }
    });
  }

  reportHookError(hookName: string, eventType: string, error: unknown): void {
    if (eventType === 'hook:error') {
      // A hook failing on hook:error must not recurse; fall back to stderr.
      console.error(`hook ${hookName} failed while handling hook:error: ${String(error)}`);
      return;
    }
    this.emit({ type: 'hook:error', hook: hookName, event: eventType, error: error instanceof Error ? error : new Error(String(error)) });
  }

  complete(): void {
    this.subject.complete();
  }
}
