import { expect } from 'chai';
import { createKernel, type Metric, type RunnerView } from '@segkit/core';
import { EvalHook, evalSchema, plugin } from '../src';

function fakeRunner(maxIters: number): RunnerView & { iter: number; evaluated: number[] } {
  const runner = {
    maxIters,
    iter: 0,
    evaluated: [] as number[],
    async evaluate(metrics: readonly Metric[]) {
      runner.evaluated.push(runner.iter);
      return { metrics: { count: metrics.length }, classTable: [], text: '' };
    },
  };
  return runner as unknown as RunnerView & { iter: number; evaluated: number[] };
}

describe('EvalHook', () => {
  it('evaluates every interval and at the end; with start, also before training', async () => {
    const hook = new EvalHook(evalSchema.parse({ interval: 2, start: true }), []);
    const runner = fakeRunner(5);
    await hook.beforeRun(runner);
    for (runner.iter = 1; runner.iter <= 5; runner.iter++) await hook.afterTrainIter(runner);
    expect(runner.evaluated).to.deep.equal([0, 2, 4, 5]);
  });

  it('builds its metrics from the metrics registry: a misspelled one is an error with the nearest name', async () => {
    const kernel = await createKernel({ plugins: [plugin], backend: 'cpu', logger: { info: () => undefined, warn: () => undefined } });
    const hook = kernel.build('hooks', { type: 'EvalHook', metric: ['mIoU', 'mFscore'] }, { path: 'evaluation' }) as EvalHook;
    expect(hook.priority).to.equal(70);
    expect(() => kernel.build('hooks', { type: 'EvalHook', metric: ['mIoU', 'mDIce'] }, { path: 'evaluation' })).to.throw(
      "evaluation.metric.1.type: unknown metrics type 'mDIce'; did you mean 'mDice'?; registered: mDice, mFscore, mIoU; is its plugin listed in `plugins`?",
    );
  });
});
