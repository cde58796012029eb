import { expect } from 'chai';
import { SeededRandom, randint, uniform } from '../src';

describe('data: SeededRandom', () => {
  it('is deterministic per seed and differs between seeds and seed parts', () => {
    const draws = (...seed: number[]) => {
      const random = SeededRandom.fromSeed(...seed);
      return Array.from({ length: 5 }, () => random.random());
    };
    expect(draws(1)).to.deep.equal(draws(1));
    expect(draws(1)).to.not.deep.equal(draws(2));
    expect(draws(1, 0, 1)).to.not.deep.equal(draws(1, 1, 0));
    expect(draws(2 ** 33)).to.not.deep.equal(draws(0));
  });

  it('its state serialises as JSON and resumes the same stream', () => {
    const random = SeededRandom.fromSeed(42);
    random.random();
    const state = JSON.parse(JSON.stringify(random.getState()));
    const expected = [random.random(), random.random(), random.random()];
    const resumed = SeededRandom.fromState(state);
    expect([resumed.random(), resumed.random(), resumed.random()]).to.deep.equal(expected);
    expect(() => SeededRandom.fromState([1, 2, 3] as never)).to.throw('a state is four integers');
  });

  it('random() in [0,1) with mean ≈ 0.5; randint covers [low, high) only; uniform stays in range', () => {
    const random = SeededRandom.fromSeed(3);
    const n = 20000;
    let sum = 0;
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const u = random.random();
      expect(u >= 0 && u < 1).to.equal(true);
      sum += u;
      seen.add(randint(random, -2, 3));
      const v = uniform(random, 0.5, 2.0);
      expect(v >= 0.5 && v < 2.0).to.equal(true);
    }
    expect(sum / n).to.be.closeTo(0.5, 0.01);
    expect([...seen].sort((a, b) => a - b)).to.deep.equal([-2, -1, 0, 1, 2]);
  });

  it('permutation is a permutation of 0..n-1', () => {
    const order = SeededRandom.fromSeed(9).permutation(100);
    expect([...order].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
    expect(order).to.not.deep.equal(Array.from({ length: 100 }, (_, i) => i));
  });
});
