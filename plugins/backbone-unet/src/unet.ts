import * as tf from '@tensorflow/tfjs-core';
import { nn, SegkitError, type FeatureExtractor, type OnnxExportContext, type OnnxValue } from '@segkit/core/runtime';

type NormConfig = nn.NormConfig;
type ActivationConfig = nn.ActivationConfig;

interface LayerConfig {
  normCfg: NormConfig | null;
  actCfg: ActivationConfig | null;
  path: string;
}

/** `num_convs` × ConvModule(3×3); the first carries the stride, the others the dilation. */
export class BasicConvBlock extends nn.Module {
  readonly convs: nn.Sequential;

  constructor(inChannels: number, outChannels: number, numConvs: number, stride: number, dilation: number, cfg: LayerConfig) {
    super();
    this.convs = this.registerModule(
      'convs',
      new nn.Sequential(
        ...Array.from({ length: numConvs }, (_, i) =>
          new nn.ConvModule(i === 0 ? inChannels : outChannels, outChannels, 3, {
            stride: i === 0 ? stride : 1,
            dilation: i === 0 ? 1 : dilation,
            padding: i === 0 ? 1 : dilation,
            norm_cfg: cfg.normCfg,
            act_cfg: cfg.actCfg,
            path: cfg.path,
          }),
        ),
      ),
    );
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D {
    return this.convs.forward(x) as tf.Tensor4D;
  }

  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    return ctx.call(this.convs, x);
  }
}

export interface InterpConvOptions {
  conv_first: boolean;
  kernel_size: number;
  stride: number;
  padding: number;
  upsample_cfg: { scale_factor?: number; size?: [number, number]; mode?: 'bilinear' | 'nearest'; align_corners?: boolean };
}

export const INTERP_CONV_DEFAULTS: InterpConvOptions = {
  conv_first: false,
  kernel_size: 1,
  stride: 1,
  padding: 0,
  upsample_cfg: { scale_factor: 2, mode: 'bilinear', align_corners: false },
};

/** MMSegmentation's InterpConv: `interp_upsample` = Sequential(Upsample, ConvModule) (or conv first). */
export class InterpConv extends nn.Module {
  readonly interpUpsample: nn.Sequential;

  constructor(inChannels: number, outChannels: number, options: InterpConvOptions, cfg: LayerConfig) {
    super();
    const conv = new nn.ConvModule(inChannels, outChannels, options.kernel_size, {
      stride: options.stride,
      padding: options.padding,
      norm_cfg: cfg.normCfg,
      act_cfg: cfg.actCfg,
      path: cfg.path,
    });
    const upsample = new nn.Upsample(options.upsample_cfg);
    this.interpUpsample = this.registerModule('interp_upsample', options.conv_first ? new nn.Sequential(conv, upsample) : new nn.Sequential(upsample, conv));
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D {
    return this.interpUpsample.forward(x) as tf.Tensor4D;
  }

  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue {
    return ctx.call(this.interpUpsample, x);
  }
}

/** Decoder level: upsample the deeper feature, concatenate [skip, upsampled], then a BasicConvBlock. */
export class UpConvBlock extends nn.Module {
  readonly convBlock: BasicConvBlock;
  readonly upsample: nn.Module;

  constructor(
    inChannels: number,
    skipChannels: number,
    outChannels: number,
    numConvs: number,
    dilation: number,
    upsample: InterpConvOptions | null,
    cfg: LayerConfig,
  ) {
    super();
    this.convBlock = this.registerModule('conv_block', new BasicConvBlock(2 * skipChannels, outChannels, numConvs, 1, dilation, cfg));
    this.upsample = this.registerModule(
      'upsample',
      upsample
        ? new InterpConv(inChannels, skipChannels, upsample, cfg)
        : new nn.ConvModule(inChannels, skipChannels, 1, { norm_cfg: cfg.normCfg, act_cfg: cfg.actCfg, path: cfg.path }),
    );
  }

  override forward(skip: tf.Tensor4D, x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.convBlock.forward(tf.concat([skip, this.upsample.forward(x) as tf.Tensor4D], 3)));
  }

  override exportOnnx(ctx: OnnxExportContext, skip: OnnxValue, x: OnnxValue): OnnxValue {
    return ctx.call(this.convBlock, ctx.concat([skip, ctx.call(this.upsample, x)], 1));
  }
}

export interface UNetOptions {
  in_channels: number;
  base_channels: number;
  num_stages: number;
  strides: number[];
  enc_num_convs: number[];
  dec_num_convs: number[];
  downsamples: boolean[];
  enc_dilations: number[];
  dec_dilations: number[];
  norm_cfg: NormConfig | null;
  act_cfg: ActivationConfig | null;
  /** InterpConv options, or null for a plain 1×1 ConvModule (no upsampling). */
  upsample: InterpConvOptions;
  norm_eval: boolean;
}

/**
 * MMSegmentation's UNet: `encoder.i` (a 2×2 max-pool where the previous stage downsamples, then a
 * BasicConvBlock) and `decoder.i` (UpConvBlock, `decoder.0` the shallowest). `forward` returns the
 * deepest feature followed by every decoder output, deepest first (num_stages maps).
 */
export class UNet extends nn.Module implements FeatureExtractor {
  readonly encoder: nn.ModuleList;
  readonly decoder: nn.ModuleList;
  readonly numStages: number;
  readonly strides: number[];
  readonly downsamples: boolean[];
  readonly normEval: boolean;

  constructor(options: UNetOptions, readonly path = 'backbone') {
    super();
    const n = options.num_stages;
    const lengths: [string, number, number][] = [
      ['strides', options.strides.length, n],
      ['enc_num_convs', options.enc_num_convs.length, n],
      ['dec_num_convs', options.dec_num_convs.length, n - 1],
      ['downsamples', options.downsamples.length, n - 1],
      ['enc_dilations', options.enc_dilations.length, n],
      ['dec_dilations', options.dec_dilations.length, n - 1],
    ];
    for (const [key, actual, expected] of lengths) {
      if (actual !== expected) throw new SegkitError(`${path}.${key}: expected ${expected} entries for num_stages ${n}, got ${actual}`, path);
    }
    this.numStages = n;
    this.strides = options.strides;
    this.downsamples = options.downsamples;
    this.normEval = options.norm_eval;
    const cfg: LayerConfig = { normCfg: options.norm_cfg, actCfg: options.act_cfg, path };
    this.encoder = this.registerModule('encoder', new nn.ModuleList());
    this.decoder = this.registerModule('decoder', new nn.ModuleList());
    let inChannels = options.in_channels;
    for (let i = 0; i < n; i++) {
      const channels = options.base_channels * 2 ** i;
      const stage: nn.Module[] = [];
      if (i !== 0) {
        if (options.strides[i] === 1 && options.downsamples[i - 1]) stage.push(new nn.MaxPool2d(2));
        const upsample = options.strides[i] !== 1 || options.downsamples[i - 1]!;
        this.decoder.push(
          new UpConvBlock(channels, channels / 2, channels / 2, options.dec_num_convs[i - 1]!, options.dec_dilations[i - 1]!, upsample ? options.upsample : null, cfg),
        );
      }
      stage.push(new BasicConvBlock(inChannels, channels, options.enc_num_convs[i]!, options.strides[i]!, options.enc_dilations[i]!, cfg));
      this.encoder.push(new nn.Sequential(...stage));
      inChannels = channels;
    }
  }

  /** The product of every stage's downsampling (16 for the standard five stages). */
  get downsampleRate(): number {
    let rate = 1;
    for (let i = 1; i < this.numStages; i++) if (this.strides[i] === 2 || this.downsamples[i - 1]) rate *= 2;
    return rate;
  }

  override train(mode = true): this {
    super.train(mode);
    if (mode && this.normEval) {
      for (const [, module] of this.namedModules()) if (module instanceof nn.BatchNorm2d) module.eval();
    }
    return this;
  }

  private checkInputSize(h: number, w: number): void {
    const rate = this.downsampleRate;
    if (h % rate !== 0 || w % rate !== 0) {
      throw new SegkitError(
        `${this.path}: the input size ${h}×${w} must be divisible by UNet's total downsampling ${rate} (num_stages ${this.numStages}, strides [${this.strides.join(', ')}], downsamples [${this.downsamples.join(', ')}]); crop or pad the images to a multiple of ${rate}`,
        this.path,
      );
    }
  }

  /**
   * `forward` as ONNX nodes. With a dynamic input size the graph cannot check divisibility by
   * `downsampleRate`: other sizes fail in the runtime at the decoder's concatenation.
   */
  override exportOnnx(ctx: OnnxExportContext, input: OnnxValue | OnnxValue[]): OnnxValue[] {
    const x0 = Array.isArray(input) ? input[0]! : input;
    const [, , h, w] = x0.shape;
    if (typeof h === 'number' && typeof w === 'number') this.checkInputSize(h, w);
    const encoded: OnnxValue[] = [];
    let x = x0;
    for (const stage of this.encoder.items()) {
      x = ctx.call(stage, x);
      encoded.push(x);
    }
    const outs: OnnxValue[] = [x];
    const decoders = this.decoder.items();
    for (let i = decoders.length - 1; i >= 0; i--) {
      x = ctx.call(decoders[i]!, encoded[i]!, x);
      outs.push(x);
    }
    return outs;
  }

  override forward(input: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
    const x0 = (Array.isArray(input) ? input[0] : input) as tf.Tensor4D;
    const [, h, w] = x0.shape;
    this.checkInputSize(h, w);
    return tf.tidy(() => {
      const encoded: tf.Tensor4D[] = [];
      let x = x0;
      for (const stage of this.encoder.items<nn.Sequential>()) {
        x = stage.forward(x) as tf.Tensor4D;
        encoded.push(x);
      }
      const outs: tf.Tensor[] = [x];
      const decoders = this.decoder.items<UpConvBlock>();
      for (let i = decoders.length - 1; i >= 0; i--) {
        x = decoders[i]!.forward(encoded[i]!, x);
        outs.push(x);
      }
      return outs;
    });
  }
}
