import * as tf from '@tensorflow/tfjs-core';
import { isNode, nodeBuiltin } from '../host';

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
  // Outside Node (a browser bundle of the runtime) models are built for inference, which needs no gradients;
  // a bundle that trains imports '@tensorflow/tfjs-core/dist/register_all_gradients' itself.
  if (!isNode()) return;
  // Resolved at run time (not a static require), so browser bundles of the runtime do not pull in jiti;
  // they load tfjs-core's ES build, which registers the gradients itself.
  const requireHere = nodeBuiltin('module', 'registering tfjs gradients for training').createRequire(__filename);
  const { createJiti } = requireHere('jiti') as typeof import('jiti');
  const jiti = createJiti(__filename, { moduleCache: true });
  jiti(requireHere.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js'));
}
