#!/usr/bin/env node
// Profiles one training iteration of a small UNet-style conv net (core's nn modules: Conv3x3 +
// BatchNorm + ReLU, max-pool, bilinear resize, concat, softmax cross-entropy) on a backend and
// prints where the time goes, per tfjs kernel.
//   node bench/backend-profile.js [--backend=native] [--batch=4] [--size=64] [--base=16]
'use strict';
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const { nn } = require('@segkit/core');
const { nativeBackendProvider, registerFastCpuKernels } = require('../plugins/backend-cpu-native');
const { timeOnBackend, printTable, profileKernels } = require('./backend-timing');

const option = (name, fallback) => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? arg.split('=')[1] : fallback;
};
const BACKEND = option('backend', 'native');
const BATCH = Number(option('batch', 4));
const SIZE = Number(option('size', 64));
const BASE = Number(option('base', 16));
const CLASSES = 19;

/** Encoder-decoder with skip connections: 3 stages of two ConvModules, bilinear upsampling. */
class TinyUNet extends nn.Module {
  constructor(base) {
    super();
    const block = (name, cin, cout) =>
      this.registerModule(name, new nn.ConvModule(cin, cout, 3, { padding: 1, norm_cfg: { type: 'BN' } }));
    this.enc = [[block('e1a', 3, base), block('e1b', base, base)], [block('e2a', base, 2 * base), block('e2b', 2 * base, 2 * base)], [block('e3a', 2 * base, 4 * base), block('e3b', 4 * base, 4 * base)]];
    this.dec = [[block('d2a', 6 * base, 2 * base), block('d2b', 2 * base, 2 * base)], [block('d1a', 3 * base, base), block('d1b', base, base)]];
    this.pool = this.registerModule('pool', new nn.MaxPool2d(2));
    this.head = this.registerModule('head', new nn.Conv2d(base, CLASSES, 1));
  }
  forward(x) {
    const skips = [];
    this.enc.forEach((stage, i) => {
      if (i > 0) x = this.pool.forward(x);
      for (const layer of stage) x = layer.forward(x);
      skips.push(x);
    });
    for (const [i, stage] of this.dec.entries()) {
      const skip = skips[skips.length - 2 - i];
      x = tf.concat([nn.resize(x, [skip.shape[1], skip.shape[2]]), skip], 3);
      for (const layer of stage) x = layer.forward(x);
    }
    return this.head.forward(x);
  }
}

function trainingStep(model, images, labels) {
  // Cross-entropy spelled out: tf.losses.softmaxCrossEntropy trips tfjs's own leak check under variableGrads.
  const loss = () => tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(model.forward(images))), -1)));
  const { value, grads } = tf.variableGrads(loss);
  tf.dispose(grads);
  return value;
}

async function main() {
  tf.env().set('IS_TEST', true);
  if (BACKEND === 'native') {
    const reason = await nativeBackendProvider.load();
    if (reason) throw new Error(reason);
  }
  if (BACKEND === 'cpu-fast') registerFastCpuKernels();
  const backend = BACKEND === 'cpu-fast' ? 'cpu' : BACKEND;
  await tf.setBackend(backend);
  const model = new TinyUNet(BASE);
  const images = tf.randomUniform([BATCH, SIZE, SIZE, 3], 0, 1, 'float32', 1);
  const labels = tf.oneHot(tf.randomUniform([BATCH, SIZE, SIZE], 0, CLASSES, 'int32', 2), CLASSES);

  const step = () => trainingStep(model, images, labels);
  const { medianMs } = timeOnBackend(backend, step, { runs: 5, warmup: 1, budgetMs: 60000 });
  console.log(`TinyUNet(base ${BASE}) training step, batch ${BATCH}, ${SIZE}x${SIZE}, ${BACKEND}: ${medianMs.toFixed(1)} ms (median)`);

  const { kernels, totalMs: total } = await profileKernels(step);
  const rows = kernels.slice(0, 20).map((e) => [e.name, String(e.calls), e.ms, `${((100 * e.ms) / total).toFixed(1)}%`]);
  printTable(`Kernel time in one profiled step (${total.toFixed(1)} ms in kernels)`, ['kernel', 'calls', 'ms', 'share'], rows);
  tf.dispose([images, labels]);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
