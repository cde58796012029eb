import { decodeHeadBaseSchema, definePlugin, SegkitError, z, type ComponentOf, type DecodeHeadBaseOptions } from '@segkit/core/runtime';
import { FCNHead } from './fcn-head';

export { FCNHead, type FCNHeadOptions } from './fcn-head';

const { name, version } = require('../../package.json') as { name: string; version: string };

const fcnHeadSchema = decodeHeadBaseSchema.extend({
  num_convs: z.number().int().min(0, { error: 'expected an integer >= 0' }).default(2),
  kernel_size: z.number().int().positive().default(3),
  concat_input: z.boolean().default(true),
  dilation: z.number().int().positive({ error: 'expected a positive integer' }).default(1),
});

export const fcnHeadDefinition: ComponentOf<'heads', z.output<typeof fcnHeadSchema>, FCNHead> = {
  type: 'FCNHead',
  schema: fcnHeadSchema,
  create: (options, ctx) => {
    if (options.input_transform === 'multiple_select') throw new SegkitError(`${ctx.path}.input_transform: FCNHead needs one input; use null or 'resize_concat'`, ctx.path);
    return new FCNHead(options, ctx);
  },
  description: 'FCN decode head: stacked 3×3 ConvModules (the usual auxiliary head)',
};

export const plugin = definePlugin({ name, version, components: { heads: [fcnHeadDefinition] } });

declare module '@segkit/core' {
  interface HeadOptionsMap {
    FCNHead: DecodeHeadBaseOptions & Omit<z.input<typeof fcnHeadSchema>, keyof DecodeHeadBaseOptions>;
  }
}
