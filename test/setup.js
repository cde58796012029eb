// Global mocha setup: quiet tfjs (no "install tfjs-node" banner) and use the pure-JS cpu backend
// unless a test selects another one.
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
tf.env().set('IS_TEST', true);
tf.setBackend('cpu');
