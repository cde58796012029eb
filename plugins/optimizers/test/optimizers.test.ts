import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { createKernel, SegkitError, type OptimizerParent, type OptimizerState } from '@segkit/core';
import { createOptimizer, plugin, type ParamGroupSpec } from '../src';

// Two gradient steps on p = [1, -2] with g1 = [0.5, 1], g2 = [-1, 0.25]; expected values are the
// torch update formulas evaluated by hand (float64) — see the comments at each case.
const G1 = [0.5, 1];
const G2 = [-1, 0.25];

function makeParam(name: string, values = [1, -2]): { name: string; variable: tf.Variable } {
  return { name, variable: tf.tidy(() => tf.variable(tf.tensor1d(values), true)) };
}

function gradsFor(params: { variable: tf.Variable }[], values: number[]): tf.NamedTensorMap {
  return Object.fromEntries(params.map((p) => [p.variable.name, tf.tensor1d(values)]));
}

/** Runs both steps and returns the parameter after each; disposes what it created. */
function twoSteps(cfg: Record<string, unknown>): number[][] {
  const param = makeParam('w');
  const optimizer = createOptimizer(cfg, [{ params: [param] }]);
  const after: number[][] = [];
  for (const g of [G1, G2]) {
    const grads = gradsFor([param], g);
    optimizer.step(grads);
    tf.dispose(Object.values(grads));
    after.push(Array.from(param.variable.dataSync()));
  }
  optimizer.dispose();
  param.variable.dispose();
  return after;
}

function disposeState(state: OptimizerState): void {
  tf.dispose(Object.values(state.slots).flatMap((slots) => Object.values(slots)));
}

function expectClose(actual: number[], expected: number[], tolerance = 1e-6): void {
  expect(actual).to.have.length(expected.length);
  actual.forEach((value, i) => expect(value, `index ${i}`).to.be.closeTo(expected[i]!, tolerance));
}

describe('@segkit/optimizers', () => {
  let before: number;
  beforeEach(() => {
    before = tf.memory().numTensors;
  });
  afterEach(() => {
    expect(tf.memory().numTensors, 'tensor leak').to.equal(before);
  });

  describe('SGD (torch.optim.SGD)', () => {
    it('applies L2 weight decay to the gradient and heavy-ball momentum', () => {
      // step 1: d = g + 0.01p = [0.51, 0.98]; buf = d; p = p − 0.1·buf = [0.949, −2.098]
      // step 2: d = [−0.99051, 0.22902]; buf = 0.9·buf + d = [−0.53151, 1.11102]; p = [1.002151, −2.209102]
      const [step1, step2] = twoSteps({ type: 'SGD', lr: 0.1, momentum: 0.9, weight_decay: 0.01 });
      expectClose(step1!, [0.949, -2.098]);
      expectClose(step2!, [1.002151, -2.209102]);
    });

    it('uses Nesterov momentum: d + momentum·buf', () => {
      // step 1: buf = [0.51, 0.98]; d' = d + 0.9·buf = [0.969, 1.862]; p = [0.9031, −2.1862]
      // step 2: d = [−0.990969, 0.228138]; buf = [−0.531969, 1.110138]; d' = [−1.4697411, 1.2272622]
      const [step1, step2] = twoSteps({ type: 'SGD', lr: 0.1, momentum: 0.9, weight_decay: 0.01, nesterov: true });
      expectClose(step1!, [0.9031, -2.1862]);
      expectClose(step2!, [1.05007411, -2.30892622]);
    });

    it('dampens the momentum update from the second step on (the first buffer is the raw gradient)', () => {
      // step 1: buf = g1 → p = [0.95, −2.1]; step 2: buf = 0.9·[0.5, 1] + 0.5·[−1, 0.25] = [−0.05, 1.025]
      const [step1, step2] = twoSteps({ type: 'SGD', lr: 0.1, momentum: 0.9, dampening: 0.5 });
      expectClose(step1!, [0.95, -2.1]);
      expectClose(step2!, [0.955, -2.2025]);
    });

    it('without momentum is p − lr·(g + wd·p)', () => {
      const [, step2] = twoSteps({ type: 'SGD', lr: 0.1, weight_decay: 0.01 });
      // step 2: p = [0.949, −2.098] − 0.1·([−1, 0.25] + 0.01·p) = [1.048051, −2.120902]
      expectClose(step2!, [1.048051, -2.120902]);
    });

    it('rejects Nesterov without momentum, a missing lr and unknown options with the option named', () => {
      const param = makeParam('w');
      expect(() => createOptimizer({ type: 'SGD', lr: 0.1, nesterov: true }, [{ params: [param] }])).to.throw(SegkitError, /optimizer\.nesterov: .*momentum > 0/);
      expect(() => createOptimizer({ type: 'SGD', momentum: 0.9 }, [{ params: [param] }])).to.throw(SegkitError, /optimizer\.lr: required/);
      expect(() => createOptimizer({ type: 'SGD', lr: 0.1, momentun: 0.9 }, [{ params: [param] }])).to.throw(SegkitError, /optimizer\.momentun: .*did you mean 'momentum'/);
      expect(() => createOptimizer({ type: 'SDG', lr: 0.1 }, [{ params: [param] }])).to.throw(SegkitError, /optimizer\.type: unknown optimizer "SDG" \(did you mean 'SGD'\?\)/);
      param.variable.dispose();
    });
  });

  describe('Adam and AdamW', () => {
    it('Adam: bias-corrected moments, lr inside the update', () => {
      // step 1 moves every coordinate by lr·sign(g) (m̂ = g, √v̂ = |g|); step 2 from the formula
      const [step1, step2] = twoSteps({ type: 'Adam', lr: 0.1 });
      expectClose(step1!, [0.9, -2.1]);
      expectClose(step2!, [0.9366103542, -2.1830597512]);
    });

    it('Adam adds weight_decay·p to the gradient (L2)', () => {
      const [, step2] = twoSteps({ type: 'Adam', lr: 0.1, weight_decay: 0.1 });
      expectClose(step2!, [0.9252635194, -2.1706400356]);
    });

    it('AdamW decays the weights directly: p·(1 − lr·wd) before the Adam step', () => {
      // step 1: [1, −2]·0.99 − 0.1·sign(g) = [0.89, −2.08]
      const [step1, step2] = twoSteps({ type: 'AdamW', lr: 0.1, weight_decay: 0.1 });
      expectClose(step1!, [0.89, -2.08]);
      expectClose(step2!, [0.9177103542, -2.1422597512]);
    });

    it('amsgrad uses the running maximum of the second moment', () => {
      // β2 = 0.5 makes v shrink for the second coordinate at step 2, so max(v̂) differs from v
      const [, plain] = twoSteps({ type: 'Adam', lr: 0.1, betas: [0.9, 0.5] });
      const [, amsgrad] = twoSteps({ type: 'Adam', lr: 0.1, betas: [0.9, 0.5], amsgrad: true });
      expectClose(plain!, [0.9334255435, -2.1988390572]);
      expectClose(amsgrad!, [0.9334255435, -2.1741292929]);
    });

    it('has torch defaults (AdamW weight decay 0.01) and validates betas', () => {
      const param = makeParam('w');
      const adamw = createOptimizer({ type: 'AdamW' }, [{ params: [param] }]);
      expect(adamw.paramGroups[0]).to.include({ lr: 1e-3, weight_decay: 1e-2, eps: 1e-8, amsgrad: false });
      expect(adamw.paramGroups[0]!.betas).to.deep.equal([0.9, 0.999]);
      expect(() => createOptimizer({ type: 'Adam', betas: [0.9, 1.5] }, [{ params: [param] }])).to.throw(SegkitError, /optimizer\.betas\.1: expected a beta in \[0, 1\)/);
      adamw.dispose();
      param.variable.dispose();
    });
  });

  describe('param groups', () => {
    it('each group uses its own lr, weight decay and momentum; defaults fill the rest', () => {
      const a = makeParam('a');
      const b = makeParam('b');
      const optimizer = createOptimizer({ type: 'SGD', lr: 0.1, momentum: 0.9, weight_decay: 0.01 }, [
        { params: [a] },
        { params: [b], lr: 1, weight_decay: 0, momentum: 0 },
      ]);
      expect(optimizer.paramGroups.map((g) => [g.lr, g.weight_decay, g.momentum, g.initial_lr])).to.deep.equal([
        [0.1, 0.01, 0.9, 0.1],
        [1, 0, 0, 1],
      ]);
      const grads = gradsFor([a, b], G1);
      optimizer.step(grads);
      tf.dispose(Object.values(grads));
      expectClose(Array.from(a.variable.dataSync()), [0.949, -2.098]);
      expectClose(Array.from(b.variable.dataSync()), [0.5, -3]); // p − 1·g
      optimizer.dispose();
      tf.dispose([a.variable, b.variable]);
    });

    it('Adam: a group lr of 10× moves 10× as far (lr is not a gradient scale)', () => {
      const a = makeParam('a');
      const b = makeParam('b');
      const optimizer = createOptimizer({ type: 'Adam', lr: 0.01 }, [{ params: [a] }, { params: [b], lr: 0.1 }]);
      const grads = gradsFor([a, b], G1);
      optimizer.step(grads);
      tf.dispose(Object.values(grads));
      expectClose(Array.from(a.variable.dataSync()), [0.99, -2.01]);
      expectClose(Array.from(b.variable.dataSync()), [0.9, -2.1]);
      optimizer.dispose();
      tf.dispose([a.variable, b.variable]);
    });

    it('leaves parameters without a gradient (frozen) untouched, weight decay included', () => {
      const trained = makeParam('trained');
      const frozen = makeParam('frozen');
      frozen.variable.trainable = false;
      const optimizer = createOptimizer({ type: 'SGD', lr: 0.1, momentum: 0.9, weight_decay: 0.01 }, [{ params: [trained, frozen] }]);
      const grads = gradsFor([trained], G1);
      optimizer.step(grads);
      tf.dispose(Object.values(grads));
      expectClose(Array.from(frozen.variable.dataSync()), [1, -2], 0);
      const state = optimizer.stateDict();
      expect(Object.keys(state.slots)).to.deep.equal(['trained']);
      disposeState(state);
      optimizer.dispose();
      tf.dispose([trained.variable, frozen.variable]);
    });

    it('rejects a tensor in two groups, naming both names and bypass_duplicate', () => {
      const shared = makeParam('conv1.0.weight');
      const groups: ParamGroupSpec[] = [{ params: [shared] }, { params: [{ name: 'conv3.0.weight', variable: shared.variable }] }];
      expect(() => createOptimizer({ type: 'SGD', lr: 0.1 }, groups)).to.throw(
        SegkitError,
        /'conv3\.0\.weight' is the same tensor as 'conv1\.0\.weight' and appears in more than one parameter group.*bypass_duplicate/,
      );
      shared.variable.dispose();
    });

    it('keeps the number of tensors flat from one step to the next', () => {
      for (const type of ['SGD', 'Adam', 'AdamW']) {
        const a = makeParam('a');
        const optimizer = createOptimizer({ type, lr: 0.1, weight_decay: 0.01, ...(type === 'SGD' ? { momentum: 0.9, nesterov: true } : { amsgrad: true }) }, [{ params: [a] }]);
        const counts: number[] = [];
        for (let i = 0; i < 4; i++) {
          const grads = gradsFor([a], i % 2 ? G1 : G2);
          optimizer.step(grads);
          tf.dispose(Object.values(grads));
          counts.push(tf.memory().numTensors);
        }
        expect(counts[1], type).to.equal(counts[0]);
        expect(counts[3], type).to.equal(counts[0]);
        optimizer.dispose();
        a.variable.dispose();
      }
    });
  });

  describe('state dict', () => {
    for (const cfg of [
      { type: 'SGD', lr: 0.1, momentum: 0.9, weight_decay: 0.01 },
      { type: 'Adam', lr: 0.1, weight_decay: 0.1 },
    ]) {
      it(`${cfg.type}: resuming from stateDict() continues exactly like an uninterrupted run`, async () => {
        const [, uninterrupted] = twoSteps(cfg);
        const param = makeParam('w');
        const first = createOptimizer(cfg, [{ params: [param] }]);
        let grads = gradsFor([param], G1);
        first.step(grads);
        tf.dispose(Object.values(grads));
        first.paramGroups[0]!.lr = 0.1; // as the schedule would have set it
        const state = first.stateDict();
        first.dispose();
        expect(state.step).to.equal(1);
        expect(state.groups).to.deep.equal([{ lr: 0.1, initial_lr: 0.1 }]);

        const resumed = createOptimizer(cfg, [{ params: [param] }]);
        await resumed.loadStateDict(state);
        disposeState(state);
        grads = gradsFor([param], G2);
        resumed.step(grads);
        tf.dispose(Object.values(grads));
        expectClose(Array.from(param.variable.dataSync()), uninterrupted!);
        const resumedState = resumed.stateDict();
        expect(resumedState.step).to.equal(2);
        disposeState(resumedState);
        resumed.dispose();
        param.variable.dispose();
      });
    }

    it('Adam keeps per-parameter step counts in the state', () => {
      const param = makeParam('w');
      const optimizer = createOptimizer({ type: 'Adam' }, [{ params: [param] }]);
      const grads = gradsFor([param], G1);
      optimizer.step(grads);
      optimizer.step(grads);
      tf.dispose(Object.values(grads));
      const state = optimizer.stateDict();
      expect(Object.keys(state.slots.w!).sort()).to.deep.equal(['exp_avg', 'exp_avg_sq', 'step']);
      expect(state.slots.w!.step!.dataSync()[0]).to.equal(2);
      tf.dispose(Object.values(state.slots.w!));
      optimizer.dispose();
      param.variable.dispose();
    });

    it('refuses a state of another optimizer type or group layout', async () => {
      const param = makeParam('w');
      const sgd = createOptimizer({ type: 'SGD', lr: 0.1 }, [{ params: [param] }]);
      const adam = createOptimizer({ type: 'Adam' }, [{ params: [param] }]);
      const sgdState = sgd.stateDict();
      const rejection = (promise: Promise<void>) => promise.then(() => null, (error: unknown) => error);
      expect(await rejection(adam.loadStateDict(sgdState))).to.be.instanceOf(SegkitError).with.property('message').that.matches(/saved by SGD, this optimizer is Adam/);
      disposeState(sgdState);
      expect(await rejection(sgd.loadStateDict({ type: 'SGD', slots: {}, step: 0, groups: [] }))).to.be.instanceOf(SegkitError).with.property('message').that.matches(/0 param groups, this optimizer has 1/);
      sgd.dispose();
      adam.dispose();
      param.variable.dispose();
    });
  });

  describe('registry', () => {
    it('builds from the kernel with the groups in ctx.extra.paramGroups, and explains when they are missing', async () => {
      const kernel = await createKernel({ plugins: [plugin], backend: 'cpu', logger: { info: () => undefined, warn: () => undefined } });
      expect(kernel.registries.optimizers.list()).to.deep.equal(['Adam', 'AdamW', 'SGD']);
      const param = makeParam('w');
      const optimizer = kernel.build('optimizers', { type: 'SGD', lr: 0.01, momentum: 0.9 }, { path: 'optimizer', parent: { paramGroups: [{ params: [param] }] } });
      expect(optimizer.paramGroups[0]).to.include({ lr: 0.01, momentum: 0.9, weight_decay: 0, initial_lr: 0.01 });
      expect(() => kernel.build('optimizers', { type: 'SGD', lr: 0.01 }, { path: 'optimizer', parent: {} as OptimizerParent })).to.throw(SegkitError, /DefaultOptimizerConstructor/);
      expect(() => kernel.build('optimizers', { type: 'SGD', lr: -1 }, { path: 'optimizer', parent: { paramGroups: [] } })).to.throw(SegkitError, /optimizer\.lr: expected a learning rate >= 0, got -1/);
      optimizer.dispose();
      param.variable.dispose();
    });
  });
});
