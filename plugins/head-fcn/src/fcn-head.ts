import * as tf from '@tensorflow/tfjs-core';
import { BaseDecodeHead, nn, SegkitError, type BuildContext, type OnnxExportContext, type OnnxValue, type ParsedDecodeHeadOptions } from '@segkit/core/runtime';

export type FCNHeadOptions = ParsedDecodeHeadOptions & { num_convs: number; kernel_size: number; concat_input: boolean; dilation: number };

/**
 * FCNHead: `num_convs` ConvModules (`convs`, identity when 0), optionally `conv_cat` over
 * [input, convs output], then Dropout2d → `conv_seg`.
 */
export class FCNHead extends BaseDecodeHead {
  readonly convs: nn.Sequential | null;
  readonly convCat: nn.ConvModule | null;

  constructor(options: FCNHeadOptions, ctx: BuildContext) {
    super(options, ctx);
    const inChannels = this.inChannels as number;
    if (options.num_convs === 0 && inChannels !== this.channels) {
      throw new SegkitError(`${ctx.path}: with num_convs 0, in_channels (${inChannels}) must equal channels (${this.channels})`, ctx.path);
    }
    const k = options.kernel_size;
    const layer = (inC: number, padding: number, dilation: number) =>
      new nn.ConvModule(inC, this.channels, k, { padding, dilation, norm_cfg: this.normCfg, act_cfg: this.actCfg, path: ctx.path });
    const padding = Math.floor(k / 2) * options.dilation;
    this.convs =
      options.num_convs > 0
        ? this.registerModule('convs', new nn.Sequential(...Array.from({ length: options.num_convs }, (_, i) => layer(i === 0 ? inChannels : this.channels, padding, options.dilation))))
        : null;
    this.convCat = options.concat_input ? this.registerModule('conv_cat', layer(inChannels + this.channels, Math.floor(k / 2), 1)) : null;
  }

  override forward(features: tf.Tensor[]): tf.Tensor4D {
    return tf.tidy(() => {
      const x = this.transformInputs(features);
      let out = this.convs ? (this.convs.forward(x) as tf.Tensor4D) : x;
      if (this.convCat) out = this.convCat.forward(tf.concat([x, out], 3));
      return this.clsSeg(out);
    });
  }

  override exportOnnx(ctx: OnnxExportContext, features: OnnxValue[]): OnnxValue {
    const x = this.transformInputsOnnx(ctx, features);
    let out = this.convs ? ctx.call(this.convs, x) : x;
    if (this.convCat) out = ctx.call(this.convCat, ctx.concat([x, out], 1));
    return this.clsSegOnnx(ctx, out);
  }
}
