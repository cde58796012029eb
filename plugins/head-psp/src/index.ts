import { decodeHeadBaseSchema, definePlugin, SegkitError, z, type ComponentOf, type DecodeHeadBaseOptions } from '@segkit/core/runtime';
import { PSPHead } from './psp-head';

export { PSPHead, PPM, type PSPHeadOptions } from './psp-head';

const { name, version } = require('../../package.json') as { name: string; version: string };

const pspHeadSchema = decodeHeadBaseSchema.extend({
  pool_scales: z.array(z.number().int().positive({ error: 'expected positive integers' })).min(1).default([1, 2, 3, 6]),
});

export const pspHeadDefinition: ComponentOf<'heads', z.output<typeof pspHeadSchema>, PSPHead> = {
  type: 'PSPHead',
  schema: pspHeadSchema,
  create: (options, ctx) => {
    if (options.input_transform === 'multiple_select') throw new SegkitError(`${ctx.path}.input_transform: PSPHead needs one input; use null or 'resize_concat'`, ctx.path);
    return new PSPHead(options, ctx);
  },
  description: 'PSPNet decode head: pyramid pooling module + 3×3 bottleneck',
};

export const plugin = definePlugin({ name, version, components: { heads: [pspHeadDefinition] } });

declare module '@segkit/core' {
  interface HeadOptionsMap {
    PSPHead: DecodeHeadBaseOptions & Omit<z.input<typeof pspHeadSchema>, keyof DecodeHeadBaseOptions>;
  }
}
