import * as path from 'path';
import { expect } from 'chai';
import { createKernel, loadConfig, SegkitError, type Kernel, type LrScheduler, type Optimizer, type ParamGroup, type LrSchedulerParent } from '@segkit/core';
import { plugin } from '../src';

const SCHEDULES = path.resolve(__dirname, '../../../../configs/_base_/schedules');

describe('@segkit/lr-schedulers', () => {
  let kernel: Kernel;
  before(async () => {
    kernel = await createKernel({ plugins: [plugin], backend: 'cpu', logger: { info: () => undefined, warn: () => undefined } });
  });

  /** `maxIters: null` builds without a horizon. */
  const build = (cfg: Record<string, unknown>, maxIters: number | null = 40000): LrScheduler =>
    kernel.build('lrSchedulers', cfg, { path: 'lr_config', parent: (maxIters === null ? {} : { maxIters }) as LrSchedulerParent });

  /** An optimizer stand-in: the scheduler only reads and writes paramGroups. */
  function groups(...initialLrs: number[]): Optimizer {
    const paramGroups = initialLrs.map((lr): ParamGroup => ({ params: [], lr, weight_decay: 0.0005, initial_lr: lr }));
    return { paramGroups } as unknown as Optimizer;
  }

  it('lists the MMCV policy names', () => {
    expect(kernel.registries.lrSchedulers.list()).to.deep.equal(['CosineAnnealing', 'fixed', 'poly', 'step']);
  });

  describe('poly', () => {
    const poly = () => build({ type: 'poly', power: 0.9, min_lr: 1e-4, by_epoch: false });

    it('gives 0.00540527864 for lr 0.01 at iteration 20000 of 40000 (min_lr 1e-4, power 0.9)', () => {
      // (0.01 − 1e-4)·0.5^0.9 + 1e-4
      expect(poly().lrAt(0.01, 20000)).to.be.closeTo(0.00540527864, 1e-9);
    });

    it('starts at the initial lr, ends at min_lr, with no warm-up by default', () => {
      expect(poly().lrAt(0.01, 0)).to.equal(0.01);
      expect(poly().lrAt(0.01, 40000)).to.be.closeTo(1e-4, 1e-15);
      expect(build({ type: 'poly' }).lrAt(0.01, 10000)).to.be.closeTo(0.0075, 1e-15); // power 1, min_lr 0
    });

    it('sets every group from its own initial lr (head groups decay from 0.1 to the same min_lr)', () => {
      const optimizer = groups(0.01, 0.1);
      const scheduler = poly();
      scheduler.apply(optimizer, 100); // applying twice must not compound
      scheduler.apply(optimizer, 20000);
      expect(optimizer.paramGroups[0]!.lr).to.be.closeTo(0.00540527864, 1e-9);
      expect(optimizer.paramGroups[1]!.lr).to.be.closeTo((0.1 - 1e-4) * 0.5 ** 0.9 + 1e-4, 1e-12);
      expect(optimizer.paramGroups[1]!.initial_lr).to.equal(0.1);
    });

    it('needs the horizon from the runner', () => {
      expect(() => build({ type: 'poly' }, null)).to.throw(SegkitError, /lr_config: the poly policy needs the number of iterations \(runner\.max_iters/);
    });
  });

  describe('step', () => {
    it('decays by gamma every `step` iterations', () => {
      const scheduler = build({ type: 'step', step: 10, gamma: 0.5 });
      expect(scheduler.lrAt(0.08, 9)).to.equal(0.08);
      expect(scheduler.lrAt(0.08, 25)).to.equal(0.02);
    });

    it('decays at each milestone of a list and clips at min_lr', () => {
      const scheduler = build({ type: 'step', step: [10, 20] });
      expect(scheduler.lrAt(1, 9)).to.equal(1);
      expect(scheduler.lrAt(1, 10)).to.be.closeTo(0.1, 1e-15);
      expect(scheduler.lrAt(1, 20)).to.be.closeTo(0.01, 1e-15);
      expect(build({ type: 'step', step: [10, 20], min_lr: 0.05 }).lrAt(1, 20)).to.equal(0.05);
    });

    it('works without a horizon and validates `step`', () => {
      expect(build({ type: 'step', step: 5 }, null).lrAt(1, 5)).to.be.closeTo(0.1, 1e-15);
      expect(() => build({ type: 'step' })).to.throw(SegkitError, /lr_config\.step: expected a positive integer or a list of positive integers/);
      expect(() => build({ type: 'step', step: [10, 0] })).to.throw(SegkitError, /lr_config\.step/);
    });
  });

  describe('CosineAnnealing', () => {
    it('anneals to min_lr or to lr·min_lr_ratio', () => {
      expect(build({ type: 'CosineAnnealing', min_lr: 0 }).lrAt(0.01, 20000)).to.be.closeTo(0.005, 1e-15);
      expect(build({ type: 'CosineAnnealing', min_lr: 0 }).lrAt(0.01, 10000)).to.be.closeTo(0.005 * (1 + Math.SQRT1_2), 1e-15);
      expect(build({ type: 'CosineAnnealing', min_lr_ratio: 0.1 }).lrAt(0.01, 20000)).to.be.closeTo(0.0055, 1e-15);
      expect(build({ type: 'CosineAnnealing', min_lr_ratio: 0.1 }).lrAt(0.01, 40000)).to.be.closeTo(0.001, 1e-15);
    });

    it('needs exactly one of min_lr and min_lr_ratio', () => {
      expect(() => build({ type: 'CosineAnnealing' })).to.throw(SegkitError, /lr_config\.min_lr: set exactly one of min_lr and min_lr_ratio/);
      expect(() => build({ type: 'CosineAnnealing', min_lr: 0, min_lr_ratio: 0.1 })).to.throw(SegkitError, /lr_config\.min_lr_ratio: set exactly one/);
    });
  });

  describe('warm-up (MMCV 1.x, by iteration)', () => {
    it('linear: regular·(1 − (1 − i/warmup_iters)·(1 − ratio))', () => {
      const scheduler = build({ type: 'fixed', warmup: 'linear', warmup_iters: 10, warmup_ratio: 0.1 });
      expect(scheduler.lrAt(1, 0)).to.be.closeTo(0.1, 1e-15);
      expect(scheduler.lrAt(1, 5)).to.be.closeTo(0.55, 1e-15);
      expect(scheduler.lrAt(1, 10)).to.equal(1);
    });

    it('constant: regular·ratio until warmup_iters', () => {
      const scheduler = build({ type: 'fixed', warmup: 'constant', warmup_iters: 10, warmup_ratio: 0.25 });
      expect(scheduler.lrAt(1, 9)).to.equal(0.25);
      expect(scheduler.lrAt(1, 10)).to.equal(1);
    });

    it('exp: regular·ratio^(1 − i/warmup_iters)', () => {
      const scheduler = build({ type: 'fixed', warmup: 'exp', warmup_iters: 10, warmup_ratio: 0.1 });
      expect(scheduler.lrAt(1, 5)).to.be.closeTo(0.316227766017, 1e-12);
    });

    it('scales the regular schedule of poly (per group)', () => {
      const scheduler = build({ type: 'poly', power: 1, min_lr: 0, warmup: 'linear', warmup_iters: 100, warmup_ratio: 0.1 }, 1000);
      // regular = 0.1·(1 − 50/1000) = 0.095; factor = 1 − 0.5·0.9 = 0.55
      expect(scheduler.lrAt(0.1, 50)).to.be.closeTo(0.05225, 1e-15);
    });

    it('rejects a warm-up without iterations, an unknown kind and a bad ratio', () => {
      expect(() => build({ type: 'poly', warmup: 'linear' })).to.throw(SegkitError, /lr_config\.warmup_iters: expected a positive integer with warmup 'linear'/);
      expect(() => build({ type: 'poly', warmup: 'cosine', warmup_iters: 5 })).to.throw(SegkitError, /lr_config\.warmup: expected 'linear', 'constant', 'exp' or null/);
      expect(() => build({ type: 'poly', warmup: 'linear', warmup_iters: 5, warmup_ratio: 0 })).to.throw(SegkitError, /lr_config\.warmup_ratio: expected a ratio in \(0, 1\]/);
    });
  });

  describe('config errors', () => {
    it('by_epoch true is an error: segkit is iteration-based', () => {
      expect(() => build({ type: 'poly', by_epoch: true })).to.throw(SegkitError, /lr_config\.by_epoch: segkit trains by iterations: expected false/);
    });

    it('unknown options are errors with the nearest name', () => {
      expect(() => build({ type: 'poly', powr: 0.9 })).to.throw(SegkitError, /lr_config\.powr: unknown option of poly \(did you mean 'power'\?\)/);
      expect(() => build({ type: 'CosineAnnealing', min_lr: 0, minlr_ratio: 0.1 })).to.throw(SegkitError, /did you mean 'min_lr_ratio'/);
    });
  });

  describe('configs/_base_/schedules', () => {
    for (const [file, maxIters, interval] of [
      ['schedule_20k.ts', 20000, 2000],
      ['schedule_40k.ts', 40000, 4000],
      ['schedule_80k.ts', 80000, 8000],
      ['schedule_160k.ts', 160000, 16000],
    ] as const) {
      it(`${file} has MMSegmentation's values and its lr_config builds`, async () => {
        const config = await loadConfig(path.join(SCHEDULES, file));
        expect(config).to.deep.equal({
          plugins: ['@segkit/optimizers', '@segkit/optim-paramwise', '@segkit/lr-schedulers'],
          optimizer: { type: 'SGD', lr: 0.01, momentum: 0.9, weight_decay: 0.0005 },
          optimizer_config: {},
          lr_config: { policy: 'poly', power: 0.9, min_lr: 1e-4, by_epoch: false },
          runner: { type: 'IterBasedRunner', max_iters: maxIters },
          checkpoint_config: { by_epoch: false, interval },
          evaluation: { interval, metric: 'mIoU', pre_eval: true },
        });
        // what the runner does: `policy` becomes `type`, the horizon comes from runner.max_iters
        const { policy, ...options } = config.lr_config as Record<string, unknown>;
        const scheduler = build({ type: policy, ...options }, (config.runner as { max_iters: number }).max_iters);
        expect(scheduler.lrAt(0.01, maxIters / 2)).to.be.closeTo(0.00540527864, 1e-9);
      });
    }
  });
});
