import { expect } from 'chai';
import { EventBus, type EventOf } from '../src';

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
    expect(errors).to.deep.equal(['BrokenHook/iter:end: disk full', 'BrokenHook/iter:end: disk full']);
    expect(received).to.deep.equal([1, 2]);
  });
});
