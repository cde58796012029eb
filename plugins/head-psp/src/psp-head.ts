import * as tf from '@tensorflow/tfjs-core';
import { BaseDecodeHead, nn, type BuildContext, type OnnxExportContext, type OnnxValue, type ParsedDecodeHeadOptions } from '@segkit/core/runtime';

/**
 * Pyramid pooling module (a ModuleList, as in MMSegmentation): per scale, adaptive average pooling to
 * s×s → 1×1 ConvModule, then bilinear upsampling back to the input size.
 */
export class PPM extends nn.ModuleList {
  constructor(
    readonly poolScales: number[],
    inChannels: number,
    channels: number,
    cfg: { norm_cfg: nn.NormConfig | null; act_cfg: nn.ActivationConfig | null; path: string },
    readonly alignCorners: boolean,
  ) {
    super(
      poolScales.map(
        (scale) => new nn.Sequential(new nn.AdaptiveAvgPool2d(scale), new nn.ConvModule(inChannels, channels, 1, { norm_cfg: cfg.norm_cfg, act_cfg: cfg.act_cfg, path: cfg.path })),
      ),
    );
  }

  override forward(x: tf.Tensor4D): tf.Tensor4D[] {
    const [, h, w] = x.shape;
    return this.items<nn.Sequential>().map((branch) =>
      tf.tidy(() => nn.resize(branch.forward(x) as tf.Tensor4D, [h, w], { alignCorners: this.alignCorners })),
    );
  }

  override exportOnnx(ctx: OnnxExportContext, x: OnnxValue): OnnxValue[] {
    const size = ctx.spatialSize(x);
    return this.items().map((branch) => ctx.resize(ctx.call(branch, x), size, { alignCorners: this.alignCorners }));
  }
}

export type PSPHeadOptions = ParsedDecodeHeadOptions & { pool_scales: number[] };

/** PSPHead: [x, PPM(x)...] concatenated → 3×3 `bottleneck` ConvModule → Dropout2d → `conv_seg`. */
export class PSPHead extends BaseDecodeHead {
  readonly pspModules: PPM;
  readonly bottleneck: nn.ConvModule;

  constructor(options: PSPHeadOptions, ctx: BuildContext) {
    super(options, ctx);
    const inChannels = this.inChannels as number;
    const cfg = { norm_cfg: this.normCfg, act_cfg: this.actCfg, path: ctx.path };
    this.pspModules = this.registerModule('psp_modules', new PPM(options.pool_scales, inChannels, this.channels, cfg, this.alignCorners));
    this.bottleneck = this.registerModule(
      'bottleneck',
      new nn.ConvModule(inChannels + options.pool_scales.length * this.channels, this.channels, 3, { padding: 1, ...cfg }),
    );
  }

  override forward(features: tf.Tensor[]): tf.Tensor4D {
    return tf.tidy(() => {
      const x = this.transformInputs(features);
      const pyramid = tf.concat([x, ...this.pspModules.forward(x)], 3);
      return this.clsSeg(this.bottleneck.forward(pyramid));
    });
  }

  override exportOnnx(ctx: OnnxExportContext, features: OnnxValue[]): OnnxValue {
    const x = this.transformInputsOnnx(ctx, features);
    const pyramid = ctx.concat([x, ...ctx.call<OnnxValue[]>(this.pspModules, x)], 1);
    return this.clsSegOnnx(ctx, ctx.call(this.bottleneck, pyramid));
  }
}
