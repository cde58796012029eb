import { definePlugin, z, type BuildContext, type ComponentOf } from '@segkit/core/runtime';
import { ResNet, type ResNetOptions } from './resnet';

export { ResNet, BasicBlock, Bottleneck, ARCH_SETTINGS, type ResNetOptions } from './resnet';

const { name, version } = require('../../package.json') as { name: string; version: string };

const positiveInts = z.array(z.number().int().positive({ error: 'expected positive integers' }));
const normCfg = z.looseObject({ type: z.string(), requires_grad: z.boolean().optional(), num_groups: z.number().int().positive().optional() });

/** MMSegmentation's ResNet options and defaults. */
const resnetOptions = {
  depth: z.union([z.literal(18), z.literal(34), z.literal(50), z.literal(101), z.literal(152)], { error: 'expected a depth of 18, 34, 50, 101 or 152' }),
  in_channels: z.number().int().positive().default(3),
  stem_channels: z.number().int().positive().default(64),
  base_channels: z.number().int().positive().default(64),
  num_stages: z.number().int().min(1).max(4, { error: 'expected 1 to 4 stages' }).default(4),
  strides: positiveInts.default([1, 2, 2, 2]),
  dilations: positiveInts.default([1, 1, 1, 1]),
  out_indices: z.array(z.number().int()).default([0, 1, 2, 3]),
  style: z.enum(['pytorch', 'caffe']).default('pytorch'),
  avg_down: z.literal(false, { error: 'avg_down (ResNetV1d) is not supported by this plugin' }).default(false),
  frozen_stages: z.number().int().min(-1).default(-1),
  conv_cfg: z.looseObject({ type: z.enum(['Conv2d', 'Conv'], { error: "only conv_cfg type 'Conv2d' is supported" }) }).nullable().default(null),
  norm_cfg: normCfg.default({ type: 'BN', requires_grad: true }),
  norm_eval: z.boolean().default(false),
  dcn: z.null({ error: 'deformable convolutions (dcn) are not supported' }).default(null),
  stage_with_dcn: z.array(z.boolean()).default([false, false, false, false]),
  plugins: z.null({ error: 'ResNet plugins are not supported' }).default(null),
  multi_grid: positiveInts.nullable().default(null),
  contract_dilation: z.boolean().default(false),
  /** Gradient checkpointing is a memory trick of PyTorch; accepted for config compatibility, no effect. */
  with_cp: z.boolean().default(false),
  zero_init_residual: z.boolean().default(true),
  pretrained: z.string().nullable().default(null),
  init_cfg: z.unknown().optional(),
};

const resnetSchema = z.object({ ...resnetOptions, deep_stem: z.boolean().default(false) });
const resnetV1cSchema = z.object(resnetOptions);

function create(options: Omit<ResNetOptions, 'deep_stem'> & { deep_stem?: boolean; pretrained: string | null }, ctx: BuildContext, deepStem: boolean): ResNet {
  if (options.pretrained) ctx.warn(`${ctx.path}.pretrained: '${options.pretrained}' is not loaded (segkit never downloads weights); use load_from with a converted checkpoint`);
  return new ResNet({ ...options, deep_stem: deepStem }, ctx.path);
}

export const resnetDefinition: ComponentOf<'backbones', z.output<typeof resnetSchema>, ResNet> = {
  type: 'ResNet',
  schema: resnetSchema,
  create: (options, ctx) => create(options, ctx, options.deep_stem),
  description: 'ResNet-18/34/50/101/152 with dilated stages (MMSegmentation parameter names)',
};

export const resnetV1cDefinition: ComponentOf<'backbones', z.output<typeof resnetV1cSchema>, ResNet> = {
  type: 'ResNetV1c',
  schema: resnetV1cSchema,
  create: (options, ctx) => create(options, ctx, true),
  description: 'ResNet with the deep stem (three 3×3 convs), as PSPNet/DeepLab configs use',
};

export const plugin = definePlugin({ name, version, components: { backbones: [resnetDefinition, resnetV1cDefinition] } });


declare module '@segkit/core' {
  interface BackboneOptionsMap {
    ResNet: z.input<typeof resnetSchema>;
    ResNetV1c: z.input<typeof resnetV1cSchema>;
  }
}
