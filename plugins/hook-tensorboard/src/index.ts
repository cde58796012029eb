import { definePlugin, type z } from '@segkit/core';
import type { tensorboardLoggerSchema } from './tensorboard-logger';
import { tensorboardLoggerDefinition } from './tensorboard-logger';

export { TensorboardLoggerHook, tensorboardLoggerSchema, type TensorboardLoggerOptions } from './tensorboard-logger';
export { EventFileWriter } from './event-file';
export { PROTO_DIR, loadEventType, type Scalar } from './event-schema';
export { trainScalars, evalScalars } from './scalars';
export { crc32c, maskCrc, maskedCrc32c } from './crc32c';
export { frameRecord } from './tfrecord';

const { version } = require('../../package.json') as { version: string };

declare module '@segkit/core' {
  interface HookOptionsMap {
    TensorboardLoggerHook: Omit<z.input<typeof tensorboardLoggerSchema>, 'by_epoch'> & { by_epoch?: false };
  }
}

export const plugin = definePlugin({
  name: '@segkit/hook-tensorboard',
  version,
  components: { hooks: [tensorboardLoggerDefinition] },
});
