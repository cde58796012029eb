import { expect } from 'chai';
import { parseRunSpec } from '../src/config/run-spec';
import { SegkitError } from '../src/errors';

const minimal = {
  model: { type: 'EncoderDecoder' },
  data: { samples_per_gpu: 4, train: { type: 'CustomDataset' } },
  optimizer: { type: 'SGD', lr: 0.01, paramwise_cfg: { custom_keys: { head: { lr_mult: 10 } } } },
  runner: { type: 'IterBasedRunner', max_iters: 100 },
};

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(SegkitError);
    return (error as Error).message;
  }
  throw new Error('expected a SegkitError');
}

describe('run spec: the top-level keys of a config', () => {
  it('validates and translates MMSegmentation spellings into segkit components', () => {
    const spec = parseRunSpec({
      ...minimal,
      lr_config: { policy: 'poly', power: 0.9, min_lr: 1e-4, by_epoch: false },
      log_config: { interval: 10, hooks: [{ type: 'TextLoggerHook' }] },
      checkpoint_config: { by_epoch: false, interval: 50 },
      evaluation: { interval: 50, metric: 'mDice', save_best: 'mDice', rule: 'greater' },
      custom_hooks: [{ type: 'MyHook' }],
      workflow: [['train', 1]],
      seed: 3,
    });
    expect(spec.maxIters).to.equal(100);
    expect(spec.data).to.deep.equal({ samplesPerGpu: 4, workersPerGpu: 0, train: { type: 'CustomDataset' }, val: undefined, test: undefined });
    expect(spec.lrScheduler).to.deep.equal({ type: 'poly', power: 0.9, min_lr: 1e-4, by_epoch: false });
    expect(spec.logInterval).to.equal(10);
    // MMCV's order: loggers, CheckpointHook, EvalHook, custom hooks; save_best moves to CheckpointHook.
    expect(spec.hooks).to.deep.equal([
      { cfg: { type: 'TextLoggerHook' }, path: 'log_config.hooks.0' },
      { cfg: { type: 'CheckpointHook', by_epoch: false, interval: 50, save_best: 'mDice', rule: 'greater' }, path: 'checkpoint_config' },
      { cfg: { type: 'EvalHook', interval: 50, metric: 'mDice' }, path: 'evaluation' },
      { cfg: { type: 'MyHook' }, path: 'custom_hooks.0' },
    ]);
    expect(spec.seed).to.equal(3);
    expect(spec.nanPolicy).to.equal('stop');
    expect(parseRunSpec({ ...minimal, evaluation: { interval: 5 } }, { noValidate: true }).hooks).to.deep.equal([]);
  });

  it('unknown top-level keys warn with the nearest key, are errors under strict; MMSegmentation keys segkit ignores are named once', () => {
    const warnings: string[] = [];
    const notices: string[] = [];
    const config = { ...minimal, optimzer: { type: 'SGD' }, log_level: 'INFO', img_norm_cfg: { mean: [1, 2, 3] } };
    parseRunSpec(config, { logger: { warn: (m) => warnings.push(m), info: (m) => notices.push(m) } });
    expect(warnings).to.deep.equal(["optimzer: unknown top-level key (did you mean 'optimizer'?); it is ignored (an error with --strict)"]);
    expect(notices).to.deep.equal(['log_level: accepted for MMSegmentation configs and ignored (segkit logs at info level)']);
    expect(errorOf(() => parseRunSpec(config, { strict: true }))).to.equal("optimzer: unknown top-level key (did you mean 'optimizer'?)");
  });

  it('names the config path and the nearest option of a bad value', () => {
    expect(errorOf(() => parseRunSpec({ ...minimal, runner: { max_iters: 0 } }))).to.equal('runner.max_iters: expected a positive integer, got 0');
    expect(errorOf(() => parseRunSpec({ ...minimal, runner: { type: 'EpochBasedRunner', max_iters: 5 } }))).to.equal(
      `runner.type: segkit trains by iterations: expected 'IterBasedRunner', got "EpochBasedRunner"`,
    );
    expect(errorOf(() => parseRunSpec({ ...minimal, data: { ...minimal.data, samples_per_gpus: 2 } }))).to.match(/^data\.samples_per_gpus: unknown option of the config \(did you mean 'samples_per_gpu'\?\)/);
    expect(errorOf(() => parseRunSpec({ ...minimal, nan_policy: 'ignore' }))).to.equal(`nan_policy: expected 'stop' or 'skip', got "ignore"`);
    expect(errorOf(() => parseRunSpec({ ...minimal, runner: undefined }))).to.equal("runner: missing from the config (did the config's _base_ list include it?)");
    expect(errorOf(() => parseRunSpec({ ...minimal, evaluation: { save_best: 'mIoU' } }))).to.equal('evaluation.save_best: keeping the best checkpoint needs checkpoint_config');
  });
});
