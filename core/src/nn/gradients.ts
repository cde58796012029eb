import * as tf from '@tensorflow/tfjs-core';

let registered = false;

/**
 * Registers tfjs's gradient functions. tfjs-core's CommonJS bundle (what Node loads) ships the
 * kernels' forward ops but none of the gradients; they exist only as ES modules with extensionless
 * imports, which Node cannot load, so jiti transpiles them once (cached on disk afterwards). The
 * ES copy shares the global engine and gradient registry with the CommonJS copy.
 * Idempotent; called when the first Module is built.
 */
export function ensureGradientsRegistered(): void {
  if (registered) return;
  registered = true;
  if (tf.getGradient('Conv2D') && tf.getGradient('Sum')) return;
  const { createJiti } = require('jiti') as typeof import('jiti');
  const jiti = createJiti(__filename, { moduleCache: true });
  jiti(require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js'));
}
