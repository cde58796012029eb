import { definePlugin, SegkitError, z, type ComponentOf } from '@segkit/core/runtime';
import { UNet } from './unet';

export { UNet, BasicConvBlock, UpConvBlock, InterpConv, INTERP_CONV_DEFAULTS, type UNetOptions, type InterpConvOptions } from './unet';

const { name, version } = require('../../package.json') as { name: string; version: string };

const positiveInts = z.array(z.number().int().positive({ error: 'expected positive integers' }));
const layerCfg = z.looseObject({ type: z.string() });

const upsampleCfgSchema = z.object({
  type: z.literal('InterpConv', { error: "only upsample_cfg type 'InterpConv' is supported" }),
  conv_first: z.boolean().default(false),
  kernel_size: z.number().int().positive().default(1),
  stride: z.number().int().positive().default(1),
  padding: z.number().int().min(0).default(0),
  upsample_cfg: z
    .object({
      scale_factor: z.number().positive().optional(),
      size: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
      mode: z.enum(['bilinear', 'nearest']).default('bilinear'),
      align_corners: z.boolean().default(false),
    })
    .strict()
    .default({ scale_factor: 2, mode: 'bilinear', align_corners: false }),
}).strict();

/** MMSegmentation's UNet options and defaults. */
const unetSchema = z.object({
  in_channels: z.number().int().positive().default(3),
  base_channels: z.number().int().positive().default(64),
  num_stages: z.number().int().min(1).default(5),
  strides: positiveInts.default([1, 1, 1, 1, 1]),
  enc_num_convs: positiveInts.default([2, 2, 2, 2, 2]),
  dec_num_convs: positiveInts.default([2, 2, 2, 2]),
  downsamples: z.array(z.boolean()).default([true, true, true, true]),
  enc_dilations: positiveInts.default([1, 1, 1, 1, 1]),
  dec_dilations: positiveInts.default([1, 1, 1, 1]),
  /** Gradient checkpointing is a memory trick of PyTorch; accepted for config compatibility, no effect. */
  with_cp: z.boolean().default(false),
  conv_cfg: z.looseObject({ type: z.enum(['Conv2d', 'Conv'], { error: "only conv_cfg type 'Conv2d' is supported" }) }).nullable().default(null),
  norm_cfg: layerCfg.nullable().default({ type: 'BN' }),
  act_cfg: layerCfg.nullable().default({ type: 'ReLU' }),
  upsample_cfg: upsampleCfgSchema.prefault({ type: 'InterpConv' }),
  norm_eval: z.boolean().default(false),
  dcn: z.null({ error: 'deformable convolutions (dcn) are not supported' }).default(null),
  plugins: z.null({ error: 'UNet plugins are not supported' }).default(null),
  pretrained: z.string().nullable().default(null),
  init_cfg: z.unknown().optional(),
});

export const unetDefinition: ComponentOf<'backbones', z.output<typeof unetSchema>, UNet> = {
  type: 'UNet',
  schema: unetSchema,
  create: (options, ctx) => {
    if (options.strides.some((s) => s !== 1 && s !== 2)) throw new SegkitError(`${ctx.path}.strides: expected 1 or 2 per stage, got [${options.strides.join(', ')}]`, ctx.path);
    if (options.pretrained) ctx.warn(`${ctx.path}.pretrained: '${options.pretrained}' is not loaded (segkit never downloads weights); use load_from with a converted checkpoint`);
    const { type: _type, ...upsample } = options.upsample_cfg;
    return new UNet(
      {
        ...options,
        norm_cfg: options.norm_cfg as { type: string } | null,
        act_cfg: options.act_cfg as { type: string } | null,
        upsample,
      },
      ctx.path,
    );
  },
  description: 'UNet encoder-decoder backbone (InterpConv upsampling), outputs one feature map per level',
};

export const plugin = definePlugin({ name, version, components: { backbones: [unetDefinition] } });

declare module '@segkit/core' {
  interface BackboneOptionsMap {
    UNet: z.input<typeof unetSchema>;
  }

}
