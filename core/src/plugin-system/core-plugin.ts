import { definePlugin } from './plugin';
import { CPU_BACKEND_PROVIDER } from './backend';
import { encoderDecoderDefinition } from '../models/encoder-decoder';
import { metricDefinitions } from '../evaluation/metrics';

const { version } = require('../../../package.json') as { version: string };

/** The components core itself provides (always loaded first). */
export const corePlugin = definePlugin({
  name: '@segkit/core',
  version,
  components: {
    backends: [CPU_BACKEND_PROVIDER],
    segmentors: [encoderDecoderDefinition],
    metrics: metricDefinitions,
  },
});
