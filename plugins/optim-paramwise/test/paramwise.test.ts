import * as path from 'path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { createKernel, loadConfig, mergeConfig, nn, SegkitError, type Kernel, type Optimizer } from '@segkit/core';
import { plugin as optimizersPlugin } from '@segkit/optimizers';
import { buildOptimizer, formatParamGroupTable, formatParameterSettings, plugin } from '../src';

const SCHEDULE_40K = path.resolve(__dirname, '../../../../configs/_base_/schedules/schedule_40k.ts');

// ------------------------------------------------------------------ MMCV's test models

/** MMCV's SubModel: a depthwise conv (groups = in = 2), a GroupNorm and its own parameter. */
class SubModel extends nn.Module {
  constructor() {
    super();
    this.registerModule('conv1', new nn.Conv2d(2, 2, 1, { groups: 2 }));
    this.registerModule('gn', new nn.GroupNorm(2, 2));
    this.registerParameter('param1', tf.ones([1]));
  }
}

/** MMCV's ExampleModel: own parameter, a bias-free conv, a conv with bias, BatchNorm, the sub-module. */
class ExampleModel extends nn.Module {
  constructor() {
    super();
    this.registerParameter('param1', tf.ones([1]));
    this.registerModule('conv1', new nn.Conv2d(3, 4, 1, { bias: false }));
    this.registerModule('conv2', new nn.Conv2d(4, 2, 1));
    this.registerModule('bn', new nn.BatchNorm2d(2));
    this.registerModule('sub', new SubModel());
  }
}

/** MMCV's ExampleDuplicateModel: `conv3.0` is the very module `conv1.0`. */
class ExampleDuplicateModel extends nn.Module {
  constructor() {
    super();
    this.registerParameter('param1', tf.ones([1]));
    const conv1 = this.registerModule('conv1', new nn.Sequential(new nn.Conv2d(3, 4, 1, { bias: false })));
    this.registerModule('conv2', new nn.Sequential(new nn.Conv2d(4, 2, 1)));
    this.registerModule('bn', new nn.BatchNorm2d(2));
    this.registerModule('sub', new SubModel());
    this.registerModule('conv3', new nn.Sequential(conv1.at(0)));
  }

  override dispose(): void {
    // conv3.0 is conv1.0: dispose each tensor once
    for (const variable of new Set(this.parameters())) variable.dispose();
    for (const [, variable] of this.namedBuffers()) if (!variable.isDisposed) variable.dispose();
  }
}

/** A segmentor-shaped model for the tutorial: backbone, decode_head, auxiliary_head. */
class TinySegmentor extends nn.Module {
  constructor() {
    super();
    const backbone = this.registerModule('backbone', new nn.Module());
    backbone.registerModule('conv1', new nn.Conv2d(3, 4, 3, { bias: false }));
    backbone.registerModule('bn1', new nn.BatchNorm2d(4));
    const decode = this.registerModule('decode_head', new nn.Module());
    decode.registerModule('conv_seg', new nn.Conv2d(4, 2, 1));
    decode.registerModule('bottleneck', new nn.ConvModule(4, 4, 3, { padding: 1, norm_cfg: { type: 'BN' } }));
    const aux = this.registerModule('auxiliary_head', new nn.Module());
    aux.registerModule('conv_seg', new nn.Conv2d(4, 2, 1));
  }
}

const BASE_LR = 0.01;
const BASE_WD = 0.0001;
const MOMENTUM = 0.9;

// The parameter order of ExampleModel (PyTorch's named_parameters order).
const EXAMPLE_NAMES = [
  'param1',
  'conv1.weight',
  'conv2.weight',
  'conv2.bias',
  'bn.weight',
  'bn.bias',
  'sub.param1',
  'sub.conv1.weight',
  'sub.conv1.bias',
  'sub.gn.weight',
  'sub.gn.bias',
];

interface GroupRow {
  names: string[];
  lr: number;
  weight_decay: number;
  momentum?: number;
}

function rows(optimizer: Optimizer): GroupRow[] {
  return optimizer.paramGroups.map((group) => ({
    names: group.params.map((param) => param.name),
    lr: group.lr,
    weight_decay: group.weight_decay,
    momentum: group.momentum,
  }));
}

/** Per-parameter settings keyed by name, with float noise rounded off. */
function settings(optimizer: Optimizer): Record<string, [lr: number, weightDecay: number]> {
  const round = (x: number) => Number(x.toPrecision(12));
  return Object.fromEntries(optimizer.paramGroups.flatMap((group) => group.params.map((param) => [param.name, [round(group.lr), round(group.weight_decay)]])));
}

describe('@segkit/optim-paramwise: DefaultOptimizerConstructor', () => {
  let kernel: Kernel;
  let warnings: string[] = [];
  let infos: string[] = [];
  let numTensors: number;

  before(async () => {
    kernel = await createKernel({
      plugins: [optimizersPlugin, plugin],
      backend: 'cpu',
      logger: { info: (message) => infos.push(message), warn: (message) => warnings.push(message) },
    });
  });
  beforeEach(() => {
    warnings = [];
    infos = [];
    numTensors = tf.memory().numTensors;
  });
  afterEach(() => {
    expect(tf.memory().numTensors, 'tensor leak').to.equal(numTensors);
  });

  /** Builds the constructor at the config root (as `buildOptimizer` does) and the optimizer for `model`. */
  function build(model: nn.Module, optimizerCfg: unknown, paramwiseCfg?: unknown): Optimizer {
    const constructor = kernel.build(
      'optimizerConstructors',
      { type: 'DefaultOptimizerConstructor', optimizer_cfg: optimizerCfg, paramwise_cfg: paramwiseCfg },
      { path: '' },
    );
    return constructor.build(model);
  }

  /** Runs `body` with a fresh model and disposes model and optimizer afterwards. */
  function withModel<M extends nn.Module>(make: () => M, body: (model: M) => void): void {
    const model = make();
    try {
      body(model);
    } finally {
      model.dispose();
    }
  }

  const sgd = { type: 'SGD', lr: BASE_LR, weight_decay: BASE_WD, momentum: MOMENTUM };

  describe('§1a.3 empty paramwise_cfg', () => {
    for (const paramwiseCfg of [undefined, null, {}]) {
      it(`paramwise_cfg ${JSON.stringify(paramwiseCfg)}: one group with every parameter and the optimizer's settings`, () => {
        withModel(
          () => new ExampleModel(),
          (model) => {
            model.child('conv1').requiresGrad(false); // frozen tensors stay in the single group
            const optimizer = build(model, sgd, paramwiseCfg);
            expect(rows(optimizer)).to.deep.equal([{ names: EXAMPLE_NAMES, lr: BASE_LR, weight_decay: BASE_WD, momentum: MOMENTUM }]);
            expect(optimizer.paramGroups[0]!.initial_lr).to.equal(BASE_LR);
            expect(optimizer.paramGroups[0]!.params[1]!.variable).to.equal(model.child<nn.Conv2d>('conv1').weight);
            optimizer.dispose();
          },
        );
      });
    }

    it('lists a shared tensor once (model.parameters() skips repeats)', () => {
      withModel(
        () => new ExampleDuplicateModel(),
        (model) => {
          const optimizer = build(model, sgd);
          expect(rows(optimizer)[0]!.names).to.deep.equal(['param1', 'conv1.0.weight', 'conv2.0.weight', 'conv2.0.bias', 'bn.weight', 'bn.bias', 'sub.param1', 'sub.conv1.weight', 'sub.conv1.bias', 'sub.gn.weight', 'sub.gn.bias']);
          optimizer.dispose();
        },
      );
    });
  });

  describe('§1a.5 rules (MMCV test_default_optimizer_constructor)', () => {
    it('bias_lr_mult, bias_decay_mult, norm_decay_mult, dwconv_decay_mult: one group per tensor in traversal order', () => {
      withModel(
        () => new ExampleModel(),
        (model) => {
          const paramwiseCfg = { bias_lr_mult: 2, bias_decay_mult: 0.5, norm_decay_mult: 0, dwconv_decay_mult: 0.1, dcn_offset_lr_mult: 0.1 };
          const optimizer = build(model, sgd, paramwiseCfg);
          expect(optimizer.paramGroups.map((group) => group.params.length)).to.deep.equal(EXAMPLE_NAMES.map(() => 1));
          expect(optimizer.paramGroups.every((group) => group.momentum === MOMENTUM)).to.equal(true);
          expect(Object.keys(settings(optimizer))).to.deep.equal(EXAMPLE_NAMES);
          expect(settings(optimizer)).to.deep.equal({
            param1: [BASE_LR, BASE_WD],
            'conv1.weight': [BASE_LR, BASE_WD],
            'conv2.weight': [BASE_LR, BASE_WD],
            'conv2.bias': [BASE_LR * 2, BASE_WD * 0.5], // bias rules
            'bn.weight': [BASE_LR, 0], // norm: weight and bias
            'bn.bias': [BASE_LR, 0], // a norm bias gets no bias_lr_mult
            'sub.param1': [BASE_LR, BASE_WD],
            'sub.conv1.weight': [BASE_LR, BASE_WD * 0.1], // depthwise
            'sub.conv1.bias': [BASE_LR * 2, BASE_WD * 0.1], // 0.x: dwconv decay wins over bias decay
            'sub.gn.weight': [BASE_LR, 0], // GroupNorm is a norm
            'sub.gn.bias': [BASE_LR, 0],
          });
          expect(optimizer.paramGroups.map((group) => group.key)).to.deep.equal([
            undefined,
            undefined,
            undefined,
            'bias',
            'norm',
            'norm',
            undefined,
            'dwconv',
            'bias+dwconv',
            'norm',
            'norm',
          ]);
          optimizer.dispose();
        },
      );
    });

    it('with multipliers left at their 0.x default 1.0 every tensor keeps the base settings, as explicit values', () => {
      withModel(
        () => new ExampleModel(),
        (model) => {
          const optimizer = build(model, sgd, { bypass_duplicate: false });
          expect(optimizer.paramGroups).to.have.length(11);
          expect(new Set(Object.values(settings(optimizer)).map(String))).to.deep.equal(new Set([`${BASE_LR},${BASE_WD}`]));
          expect(optimizer.paramGroups.every((group) => group.key === undefined)).to.equal(true);
          optimizer.dispose();
        },
      );
    });

    it('a conv with one input channel counts as depthwise (in_channels == groups), as in MMCV', () => {
      withModel(
        () => {
          const model = new nn.Module();
          model.registerModule('gray', new nn.Conv2d(1, 4, 3, { bias: false }));
          return model;
        },
        (model) => {
          const optimizer = build(model, sgd, { dwconv_decay_mult: 0 });
          expect(settings(optimizer)).to.deep.equal({ 'gray.weight': [BASE_LR, 0] });
          optimizer.dispose();
        },
      );
    });

    it('without weight_decay in the optimizer config only the lr rules apply (SGD default decay 0)', () => {
      withModel(
        () => new ExampleModel(),
        (model) => {
          const optimizer = build(model, { type: 'SGD', lr: BASE_LR, momentum: MOMENTUM }, { bias_lr_mult: 2 });
          expect(settings(optimizer)['conv2.bias']).to.deep.equal([BASE_LR * 2, 0]);
          expect(settings(optimizer)['sub.conv1.bias']).to.deep.equal([BASE_LR * 2, 0]);
          expect(settings(optimizer)['bn.weight']).to.deep.equal([BASE_LR, 0]);
          optimizer.dispose();
        },
      );
    });

    it('dcn_offset_lr_mult is accepted and inert (no deformable convolutions yet)', () => {
      withModel(
        () => new ExampleModel(),
        (model) => {
          const optimizer = build(model, sgd, { dcn_offset_lr_mult: 0.1 });
          expect(Object.values(settings(optimizer)).every(([lr]) => lr === BASE_LR)).to.equal(true);
          optimizer.dispose();
        },
      );
    });
  });

  describe('custom_keys', () => {
    it('sorts keys alphabetically then by length, first substring match wins, and skips all other rules', () => {
      withModel(
        () => new ExampleModel(),
        (model) => {
          const paramwiseCfg = {
            custom_keys: {
              param1: { lr_mult: 10 },
              sub: { lr_mult: 0.1, decay_mult: 0 },
              'sub.gn': { lr_mult: 0.01 },
              non_exist_key: { lr_mult: 0.0 },
            },
            norm_decay_mult: 0.5,
          };
          const optimizer = build(model, sgd, paramwiseCfg);
          expect(settings(optimizer)).to.deep.equal({
            param1: [BASE_LR * 10, BASE_WD], // tested as '.param1'
            'conv1.weight': [BASE_LR, BASE_WD],
            'conv2.weight': [BASE_LR, BASE_WD],
            'conv2.bias': [BASE_LR, BASE_WD],
            'bn.weight': [BASE_LR, BASE_WD * 0.5],
            'bn.bias': [BASE_LR, BASE_WD * 0.5],
            'sub.param1': [BASE_LR * 10, BASE_WD], // 'param1' (6 letters) beats 'sub' (3)
            'sub.conv1.weight': [BASE_LR * 0.1, 0],
            'sub.conv1.bias': [BASE_LR * 0.1, 0],
            'sub.gn.weight': [BASE_LR * 0.01, BASE_WD], // 'sub.gn' beats 'sub'; the norm rule is skipped
            'sub.gn.bias': [BASE_LR * 0.01, BASE_WD],
          });
          expect(optimizer.paramGroups.map((group) => group.key)).to.deep.equal([
            'param1',
            undefined,
            undefined,
            undefined,
            'norm',
            'norm',
            'param1',
            'sub',
            'sub',
            'sub.gn',
            'sub.gn',
          ]);
          expect(warnings).to.deep.equal([
            "optimizer.paramwise_cfg.custom_keys.non_exist_key: matches no parameter name; names look like '.param1'",
          ]);
          optimizer.dispose();
        },
      );
    });

    it('breaks a length tie alphabetically', () => {
      withModel(
        () => new ExampleModel(),
        (model) => {
          // 'conv' and 'sub.' are both 4 long and both in 'sub.conv1.weight': 'conv' sorts first
          const optimizer = build(model, sgd, { custom_keys: { 'sub.': { lr_mult: 3 }, conv: { lr_mult: 2 } } });
          expect(settings(optimizer)['sub.conv1.weight']).to.deep.equal([BASE_LR * 2, BASE_WD]);
          expect(settings(optimizer)['sub.gn.weight']).to.deep.equal([BASE_LR * 3, BASE_WD]);
          optimizer.dispose();
        },
      );
    });

    it('without base weight decay a custom key only sets lr', () => {
      withModel(
        () => new ExampleModel(),
        (model) => {
          const optimizer = build(model, { type: 'SGD', lr: BASE_LR, momentum: MOMENTUM }, { custom_keys: { param1: { lr_mult: 10 } } });
          const expected = Object.fromEntries(EXAMPLE_NAMES.map((name) => [name, [name.endsWith('param1') ? BASE_LR * 10 : BASE_LR, 0]]));
          expect(settings(optimizer)).to.deep.equal(expected);
          optimizer.dispose();
        },
      );
    });

    it("warns about '.backbone'-style keys: depth ≥ 1 names have no leading dot", () => {
      withModel(
        () => new ExampleModel(),
        (model) => {
          build(model, sgd, { custom_keys: { '.sub': { lr_mult: 2 } } }).dispose();
          expect(warnings).to.deep.equal([
            "optimizer.paramwise_cfg.custom_keys..sub: matches no parameter name; only root-level parameters are tested with a leading dot ('.param1'): did you mean 'sub'?",
          ]);
        },
      );
    });

    it('warns about a key that only matches parameters a longer key takes', () => {
      withModel(
        () => new ExampleModel(),
        (model) => {
          build(model, sgd, { custom_keys: { gn: { lr_mult: 2 }, 'sub.gn': { lr_mult: 3 } } }).dispose();
          expect(warnings).to.deep.equal([
            "optimizer.paramwise_cfg.custom_keys.gn: has no effect: every parameter it matches (e.g. 'sub.gn.weight') is taken by a longer key",
          ]);
        },
      );
    });
  });

  describe('frozen parameters and bypass_duplicate', () => {
    it('0.x: a frozen tensor gets a plain group with the base settings, no rule or key applies, and it never moves', () => {
      withModel(
        () => new ExampleModel(),
        (model) => {
          model.child('sub').requiresGrad(false);
          const optimizer = build(model, sgd, { custom_keys: { sub: { lr_mult: 0.1, decay_mult: 0 } }, norm_decay_mult: 0 });
          expect(optimizer.paramGroups).to.have.length(11);
          const frozen = ['sub.param1', 'sub.conv1.weight', 'sub.conv1.bias', 'sub.gn.weight', 'sub.gn.bias'];
          for (const name of frozen) expect(settings(optimizer)[name], name).to.deep.equal([BASE_LR, BASE_WD]);
          expect(optimizer.paramGroups.filter((group) => group.key === 'frozen').flatMap((group) => group.params.map((p) => p.name))).to.deep.equal(frozen);
          expect(settings(optimizer)['bn.weight']).to.deep.equal([BASE_LR, 0]);
          // the custom key now decides nothing
          expect(warnings).to.deep.equal([
            "optimizer.paramwise_cfg.custom_keys.sub: has no effect: it only matches frozen parameters (e.g. 'sub.param1'), which are never updated",
          ]);

          const before = model.child<SubModel>('sub').child<nn.Conv2d>('conv1').weight.dataSync().slice();
          // the runner differentiates with respect to the trainable parameters only
          const trainable = model.trainableParameters().map(([, variable]) => variable);
          expect(trainable).to.have.length(6);
          const { grads, value } = tf.variableGrads(() => tf.addN(trainable.map((v) => tf.sum(v))) as tf.Scalar, trainable);
          optimizer.step(grads);
          tf.dispose([value, ...Object.values(grads)]);
          expect(Array.from(model.child<SubModel>('sub').child<nn.Conv2d>('conv1').weight.dataSync())).to.deep.equal(Array.from(before));
          optimizer.dispose();
        },
      );
    });

    it('bypass_duplicate skips the repeated tensor with MMCV’s warning', () => {
      withModel(
        () => new ExampleDuplicateModel(),
        (model) => {
          const optimizer = build(model, sgd, { bypass_duplicate: true });
          expect(optimizer.paramGroups).to.have.length(11);
          expect(optimizer.paramGroups.flatMap((group) => group.params.map((p) => p.name))).to.not.include('conv3.0.weight');
          expect(warnings).to.deep.equal(['optimizer.paramwise_cfg: conv3.0 is duplicate. It is skipped since bypass_duplicate=True']);
          optimizer.dispose();
        },
      );
    });

    it('without bypass_duplicate a shared tensor is an error naming both names and the option', () => {
      withModel(
        () => new ExampleDuplicateModel(),
        (model) => {
          expect(() => build(model, sgd, { norm_decay_mult: 0 })).to.throw(
            SegkitError,
            "optimizer: parameter 'conv3.0.weight' is the same tensor as 'conv1.0.weight' and appears in more than one parameter group (a shared sub-module); set optimizer.paramwise_cfg.bypass_duplicate = true",
          );
        },
      );
    });
  });

  describe('§1a.2 errors', () => {
    const cases: [string, unknown, unknown, RegExp][] = [
      ['optimizer config not a dict', [], undefined, /^optimizer: expected an optimizer config dict .*, got \[\]$/],
      ['paramwise_cfg not a dict', { lr: 0.0001 }, ['error'], /^optimizer\.paramwise_cfg: expected a dict \(or null\), got \["error"\]$/],
      ['custom_keys not a dict', sgd, { custom_keys: ['head'] }, /^optimizer\.paramwise_cfg\.custom_keys: expected a dict of name substring/],
      [
        'decay_mult in a custom key without base weight decay',
        { type: 'SGD', lr: BASE_LR },
        { custom_keys: { param1: { lr_mult: 10 }, sub: { decay_mult: 0 } } },
        /^optimizer\.paramwise_cfg\.custom_keys\.sub\.decay_mult: needs optimizer\.weight_decay to multiply, but the optimizer config has none$/,
      ],
      ['bias_decay_mult without base weight decay', { type: 'SGD', lr: BASE_LR, weight_decay: null }, { bias_decay_mult: 1 }, /^optimizer\.paramwise_cfg\.bias_decay_mult: needs optimizer\.weight_decay/],
      ['norm_decay_mult without base weight decay (value 1 is enough)', { type: 'SGD', lr: BASE_LR }, { norm_decay_mult: 1 }, /^optimizer\.paramwise_cfg\.norm_decay_mult: needs optimizer\.weight_decay/],
      ['dwconv_decay_mult without base weight decay', { type: 'SGD', lr: BASE_LR }, { dwconv_decay_mult: 0.5 }, /^optimizer\.paramwise_cfg\.dwconv_decay_mult: needs optimizer\.weight_decay/],
      [
        'no lr with a non-empty paramwise_cfg and a conv bias (0.x: the bias rule always multiplies)',
        { type: 'Adam', weight_decay: 0.01 },
        { norm_decay_mult: 1 },
        /^optimizer\.lr: missing, but paramwise_cfg needs it: 'conv2\.bias' gets lr = lr × bias_lr_mult/,
      ],
      ['no lr with a matching custom key', { type: 'Adam' }, { custom_keys: { param1: { lr_mult: 10 } } }, /^optimizer\.lr: missing, but paramwise_cfg needs it: 'param1' gets lr = lr × custom_keys\.param1\.lr_mult/],
      ['an unknown paramwise option', sgd, { norm_decay_mul: 0 }, /^optimizer\.paramwise_cfg\.norm_decay_mul: unknown option .*did you mean 'norm_decay_mult'/],
      ['an unknown custom-key field', sgd, { custom_keys: { head: { lr_mul: 10 } } }, /^optimizer\.paramwise_cfg\.custom_keys\.head\.lr_mul: unknown option .*did you mean 'lr_mult'/],
      ['a negative multiplier', sgd, { bias_lr_mult: -1 }, /^optimizer\.paramwise_cfg\.bias_lr_mult: expected a number >= 0, got -1$/],
    ];
    for (const [title, optimizerCfg, paramwiseCfg, message] of cases) {
      it(title, () => {
        withModel(
          () => new ExampleModel(),
          (model) => {
            expect(() => build(model, optimizerCfg, paramwiseCfg)).to.throw(SegkitError, message);
          },
        );
      });
    }
  });

  describe('the tutorial: custom_keys head lr_mult 10 merged into schedule_40k', () => {
    it("puts every decode_head.* / auxiliary_head.* tensor at lr 0.1, the rest at 0.01, all with weight decay 0.0005", async () => {
      const base = await loadConfig(SCHEDULE_40K);
      const config = mergeConfig(base, { optimizer: { paramwise_cfg: { custom_keys: { head: { lr_mult: 10 } } } } });
      const model = new TinySegmentor();
      try {
        const optimizer = buildOptimizer(kernel, model, config.optimizer);
        const all = settings(optimizer);
        const names = Object.keys(all);
        expect(names).to.deep.equal(model.namedParameters().map(([name]) => name));
        const heads = names.filter((name) => name.startsWith('decode_head.') || name.startsWith('auxiliary_head.'));
        expect(heads).to.have.length(7);
        for (const name of names) {
          expect(all[name], name).to.deep.equal([heads.includes(name) ? 0.1 : 0.01, 0.0005]);
        }
        expect(optimizer.paramGroups.every((group) => group.momentum === 0.9 && group.initial_lr === group.lr)).to.equal(true);
        expect(warnings).to.deep.equal([]);

        // one table at build time, identical (key, lr, wd) rows merged
        expect(infos).to.have.length(1);
        expect(infos[0]).to.equal(formatParamGroupTable(optimizer));
        // backbone: conv 3·3·3·4 + BN 4 + 4 = 116; heads: conv_seg 4·2 + 2, bottleneck conv 3·3·4·4 + BN 8, aux conv_seg 10 = 172
        // (BN tensors get the norm rule with its default 1.0, so they share the base row)
        expect(infos[0]).to.equal(
          [
            'param groups: 10 (10 tensors, 288 scalars)',
            'key     lr    weight_decay  tensors  scalars',
            '(base)  0.01  0.0005              3      116',
            'head    0.1   0.0005              7      172',
          ].join('\n'),
        );
        optimizer.dispose();
      } finally {
        model.dispose();
      }
    });

    it('trains the heads with 10× the lr of the backbone (first SGD step: Δp = lr·(g + wd·p))', () => {
      const model = new TinySegmentor();
      try {
        const optimizer = buildOptimizer(kernel, model, { ...sgd, momentum: 0, weight_decay: 0, paramwise_cfg: { custom_keys: { head: { lr_mult: 10 } } } });
        const variables = model.parameters();
        const before = variables.map((v) => v.dataSync().slice());
        const { grads, value } = tf.variableGrads(() => tf.addN(variables.map((v) => tf.sum(v))) as tf.Scalar, variables);
        optimizer.step(grads); // every gradient is 1
        tf.dispose([value, ...Object.values(grads)]);
        model.namedParameters().forEach(([name, variable], i) => {
          const expectedStep = name.includes('head') ? 0.1 : 0.01;
          const moved = variable.dataSync().map((x, j) => before[i]![j]! - x);
          for (const delta of moved) expect(delta, name).to.be.closeTo(expectedStep, 1e-6);
        });
        optimizer.dispose();
      } finally {
        model.dispose();
      }
    });

    it('formatParameterSettings lists every parameter with its lr and weight decay', () => {
      const model = new TinySegmentor();
      try {
        const optimizer = buildOptimizer(kernel, model, { ...sgd, weight_decay: 0.0005, paramwise_cfg: { custom_keys: { head: { lr_mult: 10 } } } });
        const lines = formatParameterSettings(optimizer).split('\n');
        expect(lines).to.have.length(11);
        expect(lines[0]).to.match(/^parameter\s+lr\s+weight_decay\s+key$/);
        expect(lines[1]).to.match(/^backbone\.conv1\.weight\s+0\.01\s+0\.0005\s+\(base\)$/);
        expect(lines[4]).to.match(/^decode_head\.conv_seg\.weight\s+0\.1\s+0\.0005\s+head$/);
        expect(lines[10]).to.match(/^auxiliary_head\.conv_seg\.bias\s+0\.1\s+0\.0005\s+head$/);
        optimizer.dispose();
      } finally {
        model.dispose();
      }
    });
  });

  describe('buildOptimizer (MMCV build_optimizer)', () => {
    it('takes `constructor` and `paramwise_cfg` out of the optimizer dict and names unknown constructors', () => {
      withModel(
        () => new ExampleModel(),
        (model) => {
          const optimizer = buildOptimizer(kernel, model, { ...sgd, constructor: 'DefaultOptimizerConstructor', paramwise_cfg: { bias_lr_mult: 2 } });
          expect(settings(optimizer)['conv2.bias']).to.deep.equal([BASE_LR * 2, BASE_WD]);
          optimizer.dispose();
          expect(() => buildOptimizer(kernel, model, { ...sgd, constructor: 'DefaultOptimizerConstructer' })).to.throw(
            SegkitError,
            /^optimizer\.constructor: unknown optimizerConstructors type 'DefaultOptimizerConstructer'; did you mean 'DefaultOptimizerConstructor'\?/,
          );
          expect(() => buildOptimizer(kernel, model, { ...sgd, momentun: 0.9 })).to.throw(SegkitError, /^optimizer\.momentun: unknown option of SGD \(did you mean 'momentum'\?\)/);
        },
      );
    });
  });
});
