import { definePlugin } from '@segkit/core';
import type { z } from '@segkit/core';
import { textLoggerDefinition, type textLoggerSchema } from './text-logger';
import { jsonLoggerDefinition, type jsonLoggerSchema } from './json-logger';
import { progressDefinition, type progressSchema } from './progress';

export { TextLoggerHook } from './text-logger';
export { JsonLoggerHook } from './json-logger';
export { ProgressBarHook } from './progress';
export { formatEta, formatExp, formatGroupLrs, IntervalWindow } from './window';

const { version } = require('../../package.json') as { version: string };

declare module '@segkit/core' {
  interface HookOptionsMap {
    TextLoggerHook: Omit<z.input<typeof textLoggerSchema>, 'by_epoch'> & { by_epoch?: false };
    JsonLoggerHook: Omit<z.input<typeof jsonLoggerSchema>, 'by_epoch'> & { by_epoch?: false };
    ProgressBarHook: z.input<typeof progressSchema>;
  }
}

export const plugin = definePlugin({
  name: '@segkit/hooks-logging',
  version,
  components: { hooks: [textLoggerDefinition, jsonLoggerDefinition, progressDefinition] },
});
