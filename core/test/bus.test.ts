import { expect } from 'chai';
import { EventBus, HOOK_FAILURE_LIMIT, type EventOf } from '../src';

describe('event bus', () => {
  const iterEnd: EventOf<'iter:end'> = {
    type: 'iter:end', iter: 1, maxIters: 10, losses: { 'decode.loss_ce': 0.5 }, lrs: [{ group: 0, lr: 0.01 }], dataTime: 0, stepTime: 0.1,
    memory: { numTensors: 1, numBytes: 4, rssMB: 1 },
  };

  it('on(type) gives only events of that type, typed', () => {
    const bus = new EventBus();
    const seen: number[] = [];
    bus.on('iter:end').subscribe((event) => seen.push(event.losses['decode.loss_ce']!));
    bus.emit({ type: 'iter:start', iter: 0 });
    bus.emit(iterEnd);
    expect(seen).to.deep.equal([0.5]);
  });

  it('a hook that throws becomes a hook:error event; other hooks and later events go on', () => {
    const bus = new EventBus();
    const errors: string[] = [];
    const received: number[] = [];
    bus.on('hook:error').subscribe((event) => errors.push(`${event.hook}/${event.event}: ${event.error.message}`));
    bus.subscribe('BrokenHook', 'iter:end', () => {
      throw new Error('disk full');
    });
    bus.subscribe('GoodHook', 'iter:end', (event) => received.push(event.iter));
    bus.emit(iterEnd);
    bus.emit({ ...iterEnd, iter: 2 });
    // The same error again is counted, not re-published; the flush at the end of a run reports the count.
    expect(errors).to.deep.equal(['BrokenHook/iter:end: disk full']);
    expect(received).to.deep.equal([1, 2]);
  });

  it('repeated identical errors collapse into one report and one count', () => {
    const bus = new EventBus();
    const reports: string[] = [];
    bus.on('hook:error').subscribe((event) => reports.push(`${event.hook}: ${event.error.message} x${event.repeats ?? 0}`));
    bus.subscribe('Flaky', 'iter:end', (event) => {
      throw new Error(event.iter % 2 ? 'odd' : 'even');
    });
    for (let iter = 1; iter <= 7; iter++) bus.emit({ ...iterEnd, iter });
    expect(reports).to.deep.equal(['Flaky: odd x0', 'Flaky: even x0']);
    bus.flushRepeatedErrors();
    // odd: 4 times (1 reported + 3 repeats), even: 3 times (1 + 2)
    expect(reports.slice(2)).to.deep.equal(['Flaky: odd x3', 'Flaky: even x2']);
  });

  it('a subscriber through plain RxJS (bus.on, also piped) that throws is isolated like bus.subscribe', async () => {
    const { map } = await import('rxjs');
    const bus = new EventBus();
    const errors: string[] = [];
    const received: number[] = [];
    bus.on('hook:error').subscribe((event) => errors.push(`${event.hook}/${event.event}: ${event.error.message}`));
    bus.on('iter:end').subscribe(() => {
      throw new Error('raw subscriber');
    });
    bus.on('iter:end').pipe(map((event) => event.iter * 10)).subscribe((value) => {
      if (value === 20) throw new Error('piped subscriber');
      received.push(value);
    });
    bus.emit(iterEnd);
    bus.emit({ ...iterEnd, iter: 2 });
    bus.emit({ ...iterEnd, iter: 3 });
    // Nothing is re-thrown on a timer (which would fail this test as an uncaught error).
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(errors).to.deep.equal(['a bus.on() subscriber/iter:end: raw subscriber', 'a bus.on() subscriber/iter:end: piped subscriber']);
    expect(received).to.deep.equal([10, 30]);
  });

  it(`a hook failing ${HOOK_FAILURE_LIMIT} times in a row is switched off with one message`, () => {
    const bus = new EventBus();
    const logs: string[] = [];
    let calls = 0;
    bus.on('log').subscribe((event) => logs.push(event.message));
    bus.subscribe('Broken', 'iter:end', () => {
      calls += 1;
      throw new Error('always');
    });
    for (let iter = 1; iter <= HOOK_FAILURE_LIMIT + 5; iter++) bus.emit({ ...iterEnd, iter });
    expect(calls).to.equal(HOOK_FAILURE_LIMIT);
    expect(bus.isDisabled('Broken')).to.equal(true);
    expect(logs).to.deep.equal([`hook Broken failed ${HOOK_FAILURE_LIMIT} times in a row and is switched off for the rest of the run`]);
  });

  it('subscribeHandlers: one Subscription releases every handler of a hook', () => {
    const bus = new EventBus();
    const seen: string[] = [];
    const subscription = bus.subscribeHandlers('Logger', { 'iter:start': (e) => seen.push(`start ${e.iter}`), 'iter:end': (e) => seen.push(`end ${e.iter}`) });
    bus.emit({ type: 'iter:start', iter: 0 });
    bus.emit(iterEnd);
    subscription.unsubscribe();
    bus.emit({ type: 'iter:start', iter: 1 });
    expect(seen).to.deep.equal(['start 0', 'end 1']);
  });
});
