import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { packGeometry, type NativeAddon, type WindowGeometry } from '../src/engine';
import { checkNoTensorLeaks, expectSameAsCpu, makeRandom, randomValues, requireAddon, type Padding } from './helpers';

interface Conv3x3Case {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outC: number;
  pad: Padding;
}

/** A random 3x3 stride-1 convolution: odd sizes (partial edge tiles), any padding, small or wide channels. */
function randomConv3x3(random: ReturnType<typeof makeRandom>, wide: boolean): Conv3x3Case {
  const padKind = random.pick(['same', 'valid', 'explicit'] as const);
  const pad: Padding = padKind === 'explicit' ? [[0, 0], [random.int(0, 2), random.int(0, 2)], [random.int(0, 2), random.int(0, 2)], [0, 0]] : padKind;
  return {
    batch: random.int(1, 3),
    inH: random.int(3, 14),
    inW: random.int(3, 15),
    inC: wide ? random.int(17, 48) : random.int(1, 9),
    outC: wide ? random.int(17, 48) : random.int(1, 9),
    pad,
  };
}

const label = (c: Conv3x3Case) => `x[${c.batch},${c.inH},${c.inW},${c.inC}] out${c.outC} pad ${JSON.stringify(c.pad)}`;

/** Forward, and the gradients of a random projection of it for x (grad-input) and the filter. */
function expectConvSameAsCpu(random: ReturnType<typeof makeRandom>, c: Conv3x3Case, what: string): void {
  const x = randomValues(random, [c.batch, c.inH, c.inW, c.inC]);
  const w = randomValues(random, [3, 3, c.inC, c.outC]);
  const seed = random.int(0, 1000);
  // F(4,3)'s float32 error grows with the channel sum and its transforms' larger coefficients; measured
  // at most 3e-5 of the output's scale up to 4096 channels, so 1e-4 leaves a 3x margin.
  expectSameAsCpu('native', `${what} ${label(c)}`, () => {
    const xt = tf.tensor4d(x, [c.batch, c.inH, c.inW, c.inC]);
    const wt = tf.tensor4d(w, [3, 3, c.inC, c.outC]);
    const f = (a: tf.Tensor4D, b: tf.Tensor4D) => {
      const y = tf.conv2d(a, b, 1, c.pad);
      return tf.sum(tf.mul(y, tf.randomUniform(y.shape, -1, 1, 'float32', seed)));
    };
    return [tf.conv2d(xt, wt, 1, c.pad), ...tf.grads(f as (...args: tf.Tensor[]) => tf.Scalar)([xt, wt])];
  }, 1e-4);
}

/**
 * Runs one pass (forward or grad-filter) of the addon on random inputs for g under auto, then under
 * each forced algorithm: auto's output must be `chosen`'s, bit for bit, and differ from the other's
 * (F(4,3)'s, or im2col's for F(4,3); the direct convolution sums in im2col's order, so only F(4,3) tells them apart).
 * 'padded' (the filter gradient's padded-grid GEMM, chosen by auto only) must differ from both.
 */
function expectAutoChooses(addon: NativeAddon, random: ReturnType<typeof makeRandom>, pass: 'forward' | 'grad-filter', g: WindowGeometry, chosen: 'winograd4' | 'winograd2' | 'im2col' | 'direct' | 'padded'): void {
  const x = randomValues(random, [g.batch, g.inH, g.inW, g.inC]);
  const forward = pass === 'forward';
  const second = forward ? randomValues(random, [3, 3, g.inC, g.outC]) : randomValues(random, [g.batch, g.outH, g.outW, g.outC]);
  const run = (algorithm: string) => {
    expect(addon.setConvAlgorithm(algorithm)).to.equal(true);
    const out = new Float32Array(forward ? g.batch * g.outH * g.outW * g.outC : 9 * g.inC * g.outC);
    (forward ? addon.conv2d : addon.conv2dBackpropFilter)(x, second, out, packGeometry(g));
    return out;
  };
  const label = `${pass} x[${g.batch},${g.inH},${g.inW},${g.inC}] out ${g.outC}`;
  const auto = run('auto');
  if (chosen === 'padded') {
    for (const forced of ['im2col', 'winograd4']) expect(auto, `${label}: auto is not ${forced}`).to.not.deep.equal(run(forced));
  } else {
    expect(auto, `${label}: auto is ${chosen}`).to.deep.equal(run(chosen));
    expect(auto, `${label}: the algorithms differ`).to.not.deep.equal(run(chosen === 'winograd4' ? 'im2col' : 'winograd4'));
  }
  addon.setConvAlgorithm('auto');
}

function sameGeometry(batch: number, size: number, inC: number, outC: number): WindowGeometry {
  return { batch, inH: size, inW: size, inC, outH: size, outW: size, outC, kH: 3, kW: 3, strideH: 1, strideW: 1, dilH: 1, dilW: 1, padTop: 1, padLeft: 1 };
}

describe('native Winograd 3x3 convolutions (forward, grad-input, grad-filter): F(2,3) and F(4,3) match the cpu backend on every ISA path', function () {
  this.timeout(300000);
  let addon: NativeAddon;
  let kernelBefore = '';
  before(() => {
    addon = requireAddon();
    kernelBefore = addon.microKernel();
  });
  after(() => {
    addon.setMicroKernel(kernelBefore);
    addon.setConvAlgorithm('auto');
  });
  checkNoTensorLeaks();

  for (const kernel of ['avx512', 'avx2-fma', 'portable']) {
    for (const algorithm of ['winograd2', 'winograd4']) {
      it(`${kernel} ${algorithm}: forward, grad-input and grad-filter on random shapes`, function () {
        if (!addon.setMicroKernel(kernel)) this.skip();
        expect(addon.setConvAlgorithm(algorithm)).to.equal(true);
        const random = makeRandom(kernel.length * 31 + algorithm.length);
        for (let i = 0; i < 4; i++) expectConvSameAsCpu(random, randomConv3x3(random, i >= 2), `${kernel} ${algorithm}`);
        // Wide channels and several GEMM chunks of tiles (60 / 36 tiles per chunk at these channels): 2 x 9 x 13 =
        // 234 F(2,3) tiles (chunks spread over 2 threads), 2 x 5 x 7 = 70 F(4,3) tiles (chunks shared by the threads).
        expectConvSameAsCpu(random, { batch: 2, inH: 18, inW: 25, inC: 100, outC: 40, pad: 'same' }, `${kernel} ${algorithm}`);
        // Past 512 input channels, forward (600 in) and grad-input (530 out): GEMMs accumulated over channel blocks.
        expectConvSameAsCpu(random, { batch: 1, inH: 6, inW: 7, inC: 600, outC: 24, pad: 'same' }, `${kernel} ${algorithm}`);
        expectConvSameAsCpu(random, { batch: 2, inH: 5, inW: 6, inC: 20, outC: 530, pad: 'valid' }, `${kernel} ${algorithm}`);
        // A transformed filter past 16 MB (480 x 1000 x 36 floats): forward in blocks of output channels.
        expectConvSameAsCpu(random, { batch: 1, inH: 3, inW: 4, inC: 480, outC: 1000, pad: 'same' }, `${kernel} ${algorithm}`);
        // F(4,3) forward in input channel blocks of 224, 224 and 152 (a 16 MB filter block at 480 output
        // channels); its grad-input (600 x 480 x 36 floats) in output channel blocks of the same sizes.
        if (algorithm === 'winograd4') expectConvSameAsCpu(random, { batch: 1, inH: 2, inW: 3, inC: 600, outC: 480, pad: 'same' }, `${kernel} ${algorithm}`);
        // Grad-filter in blocks of input channels (48 x 4 and 8 here: 36 x (4 tiles + 600) floats per channel),
        // its sums (36 x 200 x 600 floats) past what a copy per thread may take.
        expectConvSameAsCpu(random, { batch: 1, inH: 5, inW: 5, inC: 200, outC: 600, pad: 'same' }, `${kernel} ${algorithm}`);
        // Grad-filter in chunks of tiles with a copy of the sums per thread: F(4,3)'s 2 x 11 x 16 = 352 tiles in
        // 4 or 5 chunks (82-113 tiles by ISA, the last partial), several per thread.
        expectConvSameAsCpu(random, { batch: 2, inH: 41, inW: 63, inC: 20, outC: 40, pad: 'same' }, `${kernel} ${algorithm}`);
      });
    }
    it(`${kernel} auto: the padded-grid GEMM's filter gradient (narrow layers over 4096 pixels and more)`, function () {
      if (!addon.setMicroKernel(kernel)) this.skip();
      addon.setConvAlgorithm('auto');
      const random = makeRandom(kernel.length * 7);
      // 16, 32 and 128 input channels (whole vectors on every ISA), 'same' (the grid's zero border) and 'valid'
      // (no border: the grid is the image), output channels that fill no whole register tile nor vector
      // (whole vectors of output channels would take the direct filter gradient).
      expectConvSameAsCpu(random, { batch: 1, inH: 64, inW: 64, inC: 16, outC: 7, pad: 'same' }, `${kernel} padded`);
      expectConvSameAsCpu(random, { batch: 1, inH: 66, inW: 66, inC: 32, outC: 5, pad: 'valid' }, `${kernel} padded`);
      expectConvSameAsCpu(random, { batch: 1, inH: 63, inW: 66, inC: 16, outC: 19, pad: [[0, 0], [2, 0], [1, 2], [0, 0]] }, `${kernel} padded`);
      expectConvSameAsCpu(random, { batch: 1, inH: 64, inW: 64, inC: 128, outC: 9, pad: 'same' }, `${kernel} padded`); // 128 inputs
    });
    it(`${kernel} auto: the direct convolution of narrow layers, forward and grad-input on the padded grid, grad-filter on the image`, function () {
      if (!addon.setMicroKernel(kernel)) this.skip();
      addon.setConvAlgorithm('auto');
      const random = makeRandom(kernel.length * 13);
      // Output channels in whole vectors on every ISA; rows of 64, 37, 46 and 30 pixels (whole and partial register
      // tiles of 6 to 16 pixels); 'same', 'valid' and explicit padding; 3 input channels (a first layer). The filter
      // gradient: 3, 16 and 32 input channels (whole channel tiles and the rest), blocks of 4 output rows over
      // 2 x 64, 11, 21 and 9 rows shared by the threads, the padding rows and columns skipped.
      expectConvSameAsCpu(random, { batch: 2, inH: 64, inW: 64, inC: 16, outC: 16, pad: 'same' }, `${kernel} direct`);
      expectConvSameAsCpu(random, { batch: 2, inH: 13, inW: 39, inC: 3, outC: 16, pad: 'valid' }, `${kernel} direct`);
      expectConvSameAsCpu(random, { batch: 1, inH: 21, inW: 45, inC: 16, outC: 32, pad: [[0, 0], [2, 0], [1, 2], [0, 0]] }, `${kernel} direct`);
      expectConvSameAsCpu(random, { batch: 1, inH: 9, inW: 30, inC: 32, outC: 16, pad: 'same' }, `${kernel} direct`);
      // Forced where it does not apply (5 output channels: no whole vectors), im2col.
      expect(addon.setConvAlgorithm('direct')).to.equal(true);
      expectConvSameAsCpu(random, { batch: 1, inH: 9, inW: 10, inC: 8, outC: 5, pad: 'same' }, `${kernel} direct forced`);
      addon.setConvAlgorithm('auto');
    });
    it(`${kernel} auto: the forward pass on small maps, its filter read in place by the micro-kernel`, function () {
      if (!addon.setMicroKernel(kernel)) this.skip();
      addon.setConvAlgorithm('auto');
      const random = makeRandom(kernel.length * 11);
      // Output channels in whole vectors on every ISA; few tiles (im2col); 600 x 9 taps is a reduction
      // the GEMM splits between threads, the others it shares out by columns.
      expectConvSameAsCpu(random, { batch: 1, inH: 5, inW: 7, inC: 40, outC: 48, pad: 'same' }, `${kernel} in place`);
      expectConvSameAsCpu(random, { batch: 2, inH: 9, inW: 8, inC: 600, outC: 32, pad: 'valid' }, `${kernel} in place`);
      expectConvSameAsCpu(random, { batch: 1, inH: 4, inW: 4, inC: 70, outC: 64, pad: [[0, 0], [1, 0], [0, 2], [0, 0]] }, `${kernel} in place`);
    });
  }

  it('auto takes the direct convolution for few channels, F(4,3) where it wins (many tiles), F(2,3) on 32-64 tiles of F(4,3) and im2col elsewhere (few tiles of a wide filter)', () => {
    const random = makeRandom(5);
    expectAutoChooses(addon, random, 'forward', sameGeometry(2, 32, 32, 32), 'winograd4'); // 128 tiles
    expectAutoChooses(addon, random, 'forward', sameGeometry(2, 16, 128, 256), 'winograd2'); // 32 tiles, 32K weights
    expectAutoChooses(addon, random, 'forward', sameGeometry(4, 16, 64, 64), 'winograd2'); // 64 tiles
    expectAutoChooses(addon, random, 'forward', sameGeometry(4, 16, 32, 64), 'im2col'); // 64 tiles, 32 input channels
    expectAutoChooses(addon, random, 'forward', sameGeometry(4, 16, 512, 512), 'winograd4'); // 64 tiles, 256K weights
    expectAutoChooses(addon, random, 'forward', sameGeometry(2, 16, 512, 512), 'im2col'); // 32 tiles, 256K weights
    expectAutoChooses(addon, random, 'forward', sameGeometry(4, 8, 64, 64), 'im2col'); // 16 tiles
    expectAutoChooses(addon, random, 'forward', sameGeometry(2, 32, 3, 16), 'direct'); // 48 weights per tap
    expectAutoChooses(addon, random, 'forward', sameGeometry(1, 64, 16, 16), 'direct');
    expectAutoChooses(addon, random, 'forward', sameGeometry(1, 520, 16, 16), 'direct'); // padded in bands: a whole padded image would pass 16 MB
    expectAutoChooses(addon, random, 'forward', sameGeometry(1, 64, 32, 32), 'winograd4'); // 1024 weights per tap
  });

  it('auto takes the direct filter gradient up to 1024 weights per tap or 16 output channels, F(4,3) from 32 tiles and 32 -> 32 channels past that, the padded-grid GEMM for other narrow layers over large maps, im2col elsewhere', () => {
    const random = makeRandom(6);
    expectAutoChooses(addon, random, 'grad-filter', sameGeometry(1, 64, 16, 16), 'direct'); // 256 weights per tap
    expectAutoChooses(addon, random, 'grad-filter', sameGeometry(1, 64, 32, 32), 'direct'); // 1024
    expectAutoChooses(addon, random, 'grad-filter', sameGeometry(2, 32, 32, 32), 'direct');
    expectAutoChooses(addon, random, 'grad-filter', sameGeometry(1, 64, 128, 16), 'direct'); // 16 output channels
    expectAutoChooses(addon, random, 'grad-filter', sameGeometry(2, 32, 32, 16), 'direct');
    expectAutoChooses(addon, random, 'grad-filter', sameGeometry(1, 64, 128, 64), 'winograd4'); // 8192 weights per tap
    expectAutoChooses(addon, random, 'grad-filter', sameGeometry(1, 64, 32, 128), 'winograd4'); // 128 outputs
    expectAutoChooses(addon, random, 'grad-filter', sameGeometry(1, 64, 32, 18), 'padded'); // 18 outputs: no whole vectors on any ISA
    expectAutoChooses(addon, random, 'grad-filter', sameGeometry(4, 8, 64, 64), 'im2col'); // 16 tiles
    expectAutoChooses(addon, random, 'grad-filter', sameGeometry(2, 8, 64, 64), 'im2col'); // 2 x 2 x 2 = 8 tiles
    expectAutoChooses(addon, random, 'grad-filter', sameGeometry(4, 8, 520, 32), 'im2col'); // 16 tiles past 512 inputs
  });

  it('names the forced algorithm and rejects unknown ones', () => {
    expect(addon.setConvAlgorithm('winograd9')).to.equal(false);
    expect(addon.setConvAlgorithm('im2col')).to.equal(true);
    expect(addon.convAlgorithm()).to.equal('im2col');
    expect(addon.setConvAlgorithm('direct')).to.equal(true);
    expect(addon.convAlgorithm()).to.equal('direct');
    expect(addon.setConvAlgorithm('auto')).to.equal(true);
    expect(addon.convAlgorithm()).to.equal('auto');
  });
});
