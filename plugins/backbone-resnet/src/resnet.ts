import * as tf from '@tensorflow/tfjs-core';
import { nn, SegkitError, type FeatureExtractor, type OnnxExportContext, type OnnxValue } from '@segkit/core/runtime';

type NormConfig = nn.NormConfig;

/** Blocks per stage for each depth (MMSegmentation's arch_settings). */
export const ARCH_SETTINGS: Record<number, { block: 'basic' | 'bottleneck'; stageBlocks: number[] }> = {
  18: { block: 'basic', stageBlocks: [2, 2, 2, 2] },
  34: { block: 'basic', stageBlocks: [3, 4, 6, 3] },
  50: { block: 'bottleneck', stageBlocks: [3, 4, 6, 3] },
  101: { block: 'bottleneck', stageBlocks: [3, 4, 23, 3] },
  152: { block: 'bottleneck', stageBlocks: [3, 8, 36, 3] },
};

interface BlockOptions {
  inplanes: number;
  planes: number;
  stride: number;
  dilation: number;
  downsample: nn.Sequential | null;
  style: 'pytorch' | 'caffe';
  normCfg: NormConfig;
  path: string;
}

function conv(inC: number, outC: number, k: number, options: nn.Conv2dOptions = {}): nn.Conv2d {
  return new nn.Conv2d(inC, outC, k, { bias: false, ...options });
}

/** ResNet-18/34 block: 3×3 (stride, dilation) → BN → ReLU → 3×3 → BN, + identity → ReLU. */
export class BasicBlock extends nn.Module {
  static readonly expansion = 1;
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.NormLayer;
  readonly conv2: nn.Conv2d;
  readonly bn2: nn.NormLayer;
  readonly relu: nn.ReLU;
  readonly downsample: nn.Sequential | null;

  constructor(o: BlockOptions) {
    super();
    this.conv1 = this.registerModule('conv1', conv(o.inplanes, o.planes, 3, { stride: o.stride, padding: o.dilation, dilation: o.dilation }));
    this.bn1 = this.addNorm(o, o.planes, 1);
    this.conv2 = this.registerModule('conv2', conv(o.planes, o.planes, 3, { padding: 1 }));
    this.bn2 = this.addNorm(o, o.planes, 2);
    this.relu = this.registerModule('relu', new nn.ReLU());
    this.downsample = o.downsample ? this.registerModule('downsample', o.downsample) : null;
  }

  private addNorm(o: BlockOptions, channels: number, index: number): nn.NormLayer {
    const { name, layer } = nn.buildNormLayer(o.normCfg, channels, index, `${o.path}.norm_cfg`);
    return this.registerModule(name, layer);
  }

  get lastNorm(): nn.NormLayer {
    return this.bn2;
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let out = nn.normActivation(this.bn1, this.relu, this.conv1.forward(x));
      out = this.bn2.forward(this.conv2.forward(out)) as tf.Tensor4D;
      const identity = this.downsample ? this.downsample.forward(x) : x;
      return nn.residualActivation(this.relu, out, identity as tf.Tensor4D);
    });
  }

  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    let out = ctx.call(this.relu, ctx.call(this.bn1, ctx.call(this.conv1, x)));
    out = ctx.call(this.bn2, ctx.call(this.conv2, out));
    const identity = this.downsample ? ctx.call(this.downsample, x) : x;
    return ctx.call(this.relu, ctx.add(out, identity));
  }
}

/**
 * ResNet-50+ block: 1×1 → BN → ReLU → 3×3 (stride and dilation, padding = dilation) → BN → ReLU →
 * 1×1 (×4 channels) → BN, + identity/downsample → ReLU. 'pytorch' style strides the 3×3, 'caffe' the first 1×1.
 */
export class Bottleneck extends nn.Module {
  static readonly expansion = 4;
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.NormLayer;
  readonly conv2: nn.Conv2d;
  readonly bn2: nn.NormLayer;
  readonly conv3: nn.Conv2d;
  readonly bn3: nn.NormLayer;
  readonly relu: nn.ReLU;
  readonly downsample: nn.Sequential | null;

  constructor(o: BlockOptions) {
    super();
    const [conv1Stride, conv2Stride] = o.style === 'pytorch' ? [1, o.stride] : [o.stride, 1];
    const norm = (channels: number, index: number) => {
      const { name, layer } = nn.buildNormLayer(o.normCfg, channels, index, `${o.path}.norm_cfg`);
      return this.registerModule(name, layer);
    };
    this.conv1 = this.registerModule('conv1', conv(o.inplanes, o.planes, 1, { stride: conv1Stride }));
    this.bn1 = norm(o.planes, 1);
    this.conv2 = this.registerModule('conv2', conv(o.planes, o.planes, 3, { stride: conv2Stride, padding: o.dilation, dilation: o.dilation }));
    this.bn2 = norm(o.planes, 2);
    this.conv3 = this.registerModule('conv3', conv(o.planes, o.planes * Bottleneck.expansion, 1));
    this.bn3 = norm(o.planes * Bottleneck.expansion, 3);
    this.relu = this.registerModule('relu', new nn.ReLU());
    this.downsample = o.downsample ? this.registerModule('downsample', o.downsample) : null;
  }

  get lastNorm(): nn.NormLayer {
    return this.bn3;
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let out = nn.normActivation(this.bn1, this.relu, this.conv1.forward(x));
      out = nn.normActivation(this.bn2, this.relu, this.conv2.forward(out));
      out = this.bn3.forward(this.conv3.forward(out)) as tf.Tensor4D;
      const identity = this.downsample ? this.downsample.forward(x) : x;
      return nn.residualActivation(this.relu, out, identity as tf.Tensor4D);
    });
  }

  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    let out = ctx.call(this.relu, ctx.call(this.bn1, ctx.call(this.conv1, x)));
    out = ctx.call(this.relu, ctx.call(this.bn2, ctx.call(this.conv2, out)));
    out = ctx.call(this.bn3, ctx.call(this.conv3, out));
    const identity = this.downsample ? ctx.call(this.downsample, x) : x;
    return ctx.call(this.relu, ctx.add(out, identity));
  }
}

export interface ResNetOptions {
  depth: number;
  in_channels: number;
  stem_channels: number;
  base_channels: number;
  num_stages: number;
  strides: number[];
  dilations: number[];
  out_indices: number[];
  style: 'pytorch' | 'caffe';
  deep_stem: boolean;
  frozen_stages: number;
  norm_cfg: NormConfig;
  norm_eval: boolean;
  multi_grid: number[] | null;
  contract_dilation: boolean;
  zero_init_residual: boolean;
}

/**
 * MMSegmentation's ResNet (ResNetV1c = deep stem): stem, max-pool, `layer1..layerN` of residual blocks.
 * `forward` returns the outputs of the stages in `out_indices`.
 */
export class ResNet extends nn.Module implements FeatureExtractor {
  readonly stages: nn.Sequential[] = [];
  readonly stem: nn.Sequential | null = null;
  /** Child name of the plain stem's norm (`bn1`, or `gn1` with GroupNorm). */
  private readonly stemNormName: string = 'bn1';
  readonly outIndices: number[];
  readonly frozenStages: number;
  readonly normEval: boolean;
  /** Channels of each stage's output. */
  readonly stageChannels: number[] = [];

  constructor(options: ResNetOptions, path = 'backbone') {
    super();
    const arch = ARCH_SETTINGS[options.depth];
    if (!arch) throw new SegkitError(`${path}.depth: expected one of ${Object.keys(ARCH_SETTINGS).join(', ')}, got ${options.depth}`, path);
    const { num_stages: numStages, strides, dilations, norm_cfg: normCfg } = options;
    if (strides.length !== numStages || dilations.length !== numStages) {
      throw new SegkitError(`${path}: strides (${strides.length}) and dilations (${dilations.length}) need one entry per stage (num_stages ${numStages})`, path);
    }
    const badIndex = options.out_indices.find((i) => i < 0 || i >= numStages);
    if (badIndex !== undefined) throw new SegkitError(`${path}.out_indices: ${badIndex} is not a stage index (0..${numStages - 1})`, path);
    this.outIndices = options.out_indices;
    this.frozenStages = options.frozen_stages;
    this.normEval = options.norm_eval;
    const norm = (channels: number) => nn.buildNormLayer(normCfg, channels, '', `${path}.norm_cfg`).layer;

    const stem = options.stem_channels;
    if (options.deep_stem) {
      this.stem = this.registerModule(
        'stem',
        new nn.Sequential(
          conv(options.in_channels, stem / 2, 3, { stride: 2, padding: 1 }), norm(stem / 2), new nn.ReLU(),
          conv(stem / 2, stem / 2, 3, { padding: 1 }), norm(stem / 2), new nn.ReLU(),
          conv(stem / 2, stem, 3, { padding: 1 }), norm(stem), new nn.ReLU(),
        ),
      );
    } else {
      this.registerModule('conv1', conv(options.in_channels, stem, 7, { stride: 2, padding: 3 }));
      const { name, layer } = nn.buildNormLayer(normCfg, stem, 1, `${path}.norm_cfg`);
      this.stemNormName = name;
      this.registerModule(name, layer);
      this.registerModule('relu', new nn.ReLU());
    }
    this.registerModule('maxpool', new nn.MaxPool2d(3, 2, 1));

    const Block = arch.block === 'basic' ? BasicBlock : Bottleneck;
    let inplanes = stem;
    arch.stageBlocks.slice(0, numStages).forEach((blocks, i) => {
      const planes = options.base_channels * 2 ** i;
      const stride = strides[i]!;
      const dilation = dilations[i]!;
      const outChannels = planes * Block.expansion;
      const layerPath = `${path}.layer${i + 1}`;
      const downsample = stride !== 1 || inplanes !== outChannels ? new nn.Sequential(conv(inplanes, outChannels, 1, { stride }), norm(outChannels)) : null;
      // contract_dilation: the first block of a dilated stage uses half the dilation (PSPNet's layer3 = 1, 2, 2, ...).
      // multi_grid (last stage only) gives each block its own dilation.
      const multiGrid = i === numStages - 1 ? options.multi_grid : null;
      if (multiGrid && multiGrid.length !== blocks) throw new SegkitError(`${path}.multi_grid: expected ${blocks} dilations (one per block of the last stage), got ${multiGrid.length}`, path);
      const firstDilation = multiGrid ? multiGrid[0]! : dilation > 1 && options.contract_dilation ? Math.floor(dilation / 2) : dilation;
      const layer = new nn.Sequential(
        ...Array.from({ length: blocks }, (_, b) =>
          new Block({
            inplanes: b === 0 ? inplanes : outChannels,
            planes,
            stride: b === 0 ? stride : 1,
            dilation: b === 0 ? firstDilation : multiGrid ? multiGrid[b]! : dilation,
            downsample: b === 0 ? downsample : null,
            style: options.style,
            normCfg,
            path: layerPath,
          }),
        ),
      );
      this.stages.push(this.registerModule(`layer${i + 1}`, layer));
      this.stageChannels.push(outChannels);
      inplanes = outChannels;
    });
    this.initWeights(options.zero_init_residual);
    this.freezeStages();
  }

  /** MMSegmentation's init without a checkpoint: Kaiming (fan_out) convs, BN 1/0, last BN of each block 0. */
  private initWeights(zeroInitResidual: boolean): void {
    for (const [, module] of this.namedModules()) {
      if (module instanceof nn.Conv2d) nn.kaimingInit(module.weight);
    }
    if (!zeroInitResidual) return;
    for (const stage of this.stages) {
      for (const block of stage.namedChildren().map(([, b]) => b as BasicBlock | Bottleneck)) {
        const lastNorm = block.lastNorm;
        for (const [, variable] of lastNorm.ownParameters().slice(0, 1)) nn.constantInit(variable, 0);
      }
    }
  }

  /** `frozen_stages`: stage 0 is the stem; frozen parts never train and stay in eval mode. */
  private frozenModules(): nn.Module[] {
    if (this.frozenStages < 0) return [];
    const stemParts = this.stem ? [this.stem] : ['conv1', this.stemNormName].map((name) => this.child(name));
    return [...stemParts, ...this.stages.slice(0, this.frozenStages)];
  }

  private freezeStages(): void {
    for (const module of this.frozenModules()) {
      module.eval();
      module.requiresGrad(false);
    }
  }

  override train(mode = true): this {
    super.train(mode);
    this.freezeStages();
    if (mode && this.normEval) {
      for (const [, module] of this.namedModules()) if (module instanceof nn.BatchNorm2d) module.eval();
    }
    return this;
  }

  override forward(input: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
    const x0 = (Array.isArray(input) ? input[0] : input) as tf.Tensor4D;
    return tf.tidy(() => {
      let x = this.stem ? this.stem.forward(x0) : this.stemForward(x0);
      x = this.child<nn.MaxPool2d>('maxpool').forward(x as tf.Tensor4D);
      const outs: tf.Tensor[] = [];
      this.stages.forEach((stage, i) => {
        x = stage.forward(x) as tf.Tensor4D;
        if (this.outIndices.includes(i)) outs.push(x);
      });
      return outs;
    });
  }

  override exportOnnx(ctx: OnnxExportContext, input: OnnxValue | OnnxValue[]): OnnxValue[] {
    const x0 = Array.isArray(input) ? input[0]! : input;
    let x = this.stem
      ? ctx.call(this.stem, x0)
      : ctx.call(this.child('relu'), ctx.call(this.child(this.stemNormName), ctx.call(this.child('conv1'), x0)));
    x = ctx.call(this.child('maxpool'), x);
    const outs: OnnxValue[] = [];
    this.stages.forEach((stage, i) => {
      x = ctx.call(stage, x);
      if (this.outIndices.includes(i)) outs.push(x);
    });
    return outs;
  }

  private stemForward(x: tf.Tensor4D): tf.Tensor4D {
    const conv1 = this.child<nn.Conv2d>('conv1');
    const bn1 = this.child<nn.NormLayer>(this.stemNormName);
    return nn.normActivation(bn1, this.child<nn.ReLU>('relu'), conv1.forward(x));
  }
}
