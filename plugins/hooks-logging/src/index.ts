import { definePlugin } from '@segkit/core';
import { textLoggerDefinition } from './text-logger';
import { jsonLoggerDefinition } from './json-logger';
import { progressDefinition } from './progress';

export { TextLoggerHook } from './text-logger';
export { JsonLoggerHook } from './json-logger';
export { ProgressBarHook } from './progress';
export { formatEta, formatExp, formatGroupLrs, IntervalWindow } from './window';

const { version } = require('../../package.json') as { version: string };

declare module '@segkit/core' {
  interface HookOptionsMap {
    TextLoggerHook: { by_epoch?: false; interval?: number; to_file?: boolean; ignore_last?: boolean; reset_flag?: boolean };
    JsonLoggerHook: { by_epoch?: false; interval?: number };
    ProgressBarHook: { width?: number; force?: boolean };
  }
}

export const plugin = definePlugin({
  name: '@segkit/hooks-logging',
  version,
  components: { hooks: [textLoggerDefinition, jsonLoggerDefinition, progressDefinition] },
});
