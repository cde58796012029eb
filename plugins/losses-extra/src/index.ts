import { definePlugin, type z } from '@segkit/core/runtime';
import { focalDefinition, type focalSchema } from './focal';
import { lovaszDefinition, type lovaszSchema } from './lovasz';
import { tverskyDefinition, type tverskySchema } from './tversky';

export * from './focal';
export * from './lovasz';
export * from './tversky';

const { version } = require('../../package.json') as { version: string };

declare module '@segkit/core' {
  interface LossOptionsMap {
    FocalLoss: Partial<z.input<typeof focalSchema>>;
    LovaszLoss: Partial<z.input<typeof lovaszSchema>>;
    TverskyLoss: Partial<z.input<typeof tverskySchema>>;
  }
}

export const plugin = definePlugin({
  name: '@segkit/losses-extra',
  version,
  components: { losses: [focalDefinition, lovaszDefinition, tverskyDefinition] },
});
