import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createKernel, isSegkitPlugin, nn, sumTensors, type Kernel, type Loss, type PixelSampler } from '@segkit/core';
import { plugin as crossEntropyPlugin } from '@segkit/loss-cross-entropy';
import { plugin as dicePlugin } from '@segkit/loss-dice';
import { plugin as ohemPlugin } from '@segkit/sampler-ohem';
import { plugin, webGpuBackendProvider, WebGpuBackendProvider } from '../src';
import { loadWebGpuOrExplain } from './demo';
import { largestMagnitude, random } from './numbers';

const quiet = { info: () => undefined, warn: () => undefined };


const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A trainable variable (the gradient's target) without keeping its initial tensor alive. */
function variableOf(values: Float32Array, shape: number[]): tf.Variable {
  const initial = tf.tensor(values, shape);
  const variable = tf.variable(initial, true);
  initial.dispose();
  return variable;
}

/** Runs `compute` on `backend`, reads every result asynchronously, and checks that nothing leaked. */
async function valuesOn(backend: string, compute: () => tf.Tensor[]): Promise<Float32Array[]> {
  expect(await tf.setBackend(backend), `tf.setBackend('${backend}')`).to.equal(true);
  const before = tf.memory().numTensors;
  const results = compute();
  const values = await Promise.all(results.map((t) => t.data()));
  tf.dispose(results);
  expect(tf.memory().numTensors, `tensors left behind on ${backend}`).to.equal(before);
  return values.map((v) => Float32Array.from(v as ArrayLike<number>));
}

/** Every value within 1e-4 of the reference, relative to the reference tensor's largest magnitude (at least 1). */
function expectClose(actual: Float32Array[], expected: Float32Array[], what: string): void {
  expect(actual.length, what).to.equal(expected.length);
  expected.forEach((reference, t) => {
    const scale = largestMagnitude(reference, 1);
    let worst = 0;
    for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(actual[t]![i]! - reference[i]!));
    expect(actual[t]!.length, `${what} output ${t} size`).to.equal(reference.length);
    expect(worst / scale, `${what}: output ${t} differs from cpu by ${worst} (scale ${scale})`).to.be.at.most(1e-4);
  });
}

/**
 * Output and the gradients (of Σ output·w, w random) with respect to the input and to every parameter of
 * the module, first on cpu, then on webgpu. Each backend gets its own module (built while it is active,
 * so no tensor moves between backends inside a kernel) with the cpu module's weights and buffers.
 */
async function compareModule(what: string, build: () => nn.Module, inputShape: number[], seed: number, training = true): Promise<void> {
  const inputValues = random(size(inputShape), seed);
  let weights: Map<string, { values: Float32Array | Int32Array; dtype: tf.DataType }> | null = null;
  const run = (): tf.Tensor[] => {
    const module = build();
    if (training) module.train();
    else module.eval();
    const state = module.stateDict();
    if (weights === null) {
      // On cpu (the first run) a synchronous read is fine; other backends take these values.
      weights = new Map([...state].map(([name, v]) => [name, { values: v.dataSync() as Float32Array | Int32Array, dtype: v.dtype }]));
    } else {
      for (const [name, variable] of state) tf.tidy(() => variable.assign(tf.tensor(weights!.get(name)!.values, variable.shape, variable.dtype)));
    }
    const x = variableOf(inputValues, inputShape);
    const params = module.parameters().filter((p) => p.trainable);
    let output: tf.Tensor | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const y = module.forward(x) as tf.Tensor;
      output = tf.keep(tf.clone(y));
      return tf.sum(tf.mul(y, tf.tensor(random(y.size, seed + 1), y.shape)));
    }, [x, ...params]);
    const results = [output!, value, grads[x.name]!, ...params.map((p) => grads[p.name]!), ...[...state.values()].map((v) => tf.clone(v))];
    x.dispose();
    module.dispose();
    return results;
  };
  const reference = await valuesOn('cpu', run);
  const actual = await valuesOn('webgpu', run);
  expectClose(actual, reference, what);
  await tf.setBackend('cpu');
}

describe('@segkit/backend-webgpu on a real WebGPU device', function () {
  this.timeout(600000);
  let previousBackend: string;

  before(async function () {
    previousBackend = tf.getBackend();
    await loadWebGpuOrExplain();
    expect(await tf.setBackend('webgpu')).to.equal(true);
  });

  after(async () => {
    await tf.setBackend(previousBackend);
    await webGpuBackendProvider.release();
    expect(webGpuBackendProvider.activeDevice).to.equal(null);
  });

  it('is a plugin declaring backend webgpu; describes its adapter; a CPU-emulated adapter is declined under auto only', async () => {
    expect(isSegkitPlugin(plugin)).to.equal(true);
    expect(webGpuBackendProvider).to.include({ name: 'webgpu', priority: 250, packageName: '@segkit/backend-webgpu' });
    const adapter = webGpuBackendProvider.adapterInfo!;
    expect(webGpuBackendProvider.describe()).to.match(/^adapter: .*\(vendor .*, architecture .*; \d+ storage buffers per stage, bindings up to \d+ MiB\)$/);
    // The device was created with the adapter's own limit (tfjs asks for WebGPU's default, 8).
    expect(webGpuBackendProvider.activeDevice!.limits.maxStorageBuffersPerShaderStage).to.equal(adapter.maxStorageBuffersPerShaderStage);
    const underAuto = await webGpuBackendProvider.load({ byName: false });
    if (adapter.software) expect(underAuto).to.match(/CPU emulation.*'auto' takes only a GPU, set backend: 'webgpu'/);
    else expect(underAuto).to.equal(null);
  });

  it('reports missing peers in one line, without throwing', async () => {
    const missing = new WebGpuBackendProvider('@segkit/backend-webgpu', (id) => {
      throw new Error(`Cannot find module '${id}'\nRequire stack: ...`);
    });
    expect(await missing.load({ byName: true })).to.equal(
      "webgpu is not installed (optional peer dependencies: npm install webgpu@^0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0; see @segkit/backend-webgpu's README)",
    );
  });

  it('dataSync of a GPU tensor is a clear error, not a crash inside tfjs', async () => {
    await tf.setBackend('webgpu');
    const x = tf.add(tf.ones([4096]), 1);
    expect(() => x.dataSync()).to.throw("webgpu: tensors cannot be read synchronously (dataSync/arraySync) on a GPU backend; use 'await tensor.data()'");
    expect(Array.from(await x.data()).every((v) => v === 2)).to.equal(true);
    x.dispose();
    await tf.setBackend('cpu');
  });

  describe('every layer of a UNet and a PSPNet R50-D8 training step, forward and gradient, equals cpu (1e-4 relative)', () => {
    // Shapes are odd on purpose (no power-of-two luck); seeds make them the same on every run.
    it('Conv2d: 3×3 padded with bias, strided 3×3 and 1×1, 7×7 stem', async () => {
      await compareModule('conv 3x3', () => new nn.Conv2d(5, 7, 3, { padding: 1, bias: true }), [2, 9, 11, 5], 1);
      await compareModule('conv 3x3 stride 2', () => new nn.Conv2d(4, 6, 3, { stride: 2, padding: 1, bias: false }), [2, 13, 10, 4], 2);
      await compareModule('conv 1x1 stride 2', () => new nn.Conv2d(6, 3, 1, { stride: 2, bias: false }), [1, 9, 9, 6], 3);
      await compareModule('conv 7x7 stride 2 (stem)', () => new nn.Conv2d(3, 4, 7, { stride: 2, padding: 3, bias: false }), [1, 17, 15, 3], 4);
    });

    it('Conv2d dilated 2 and 4 (R50-D8 stages, the space-to-batch path)', async () => {
      await compareModule('conv dilation 2', () => new nn.Conv2d(4, 5, 3, { padding: 2, dilation: 2, bias: false }), [2, 11, 9, 4], 5);
      await compareModule('conv dilation 4', () => new nn.Conv2d(3, 4, 3, { padding: 4, dilation: 4, bias: false }), [1, 13, 10, 3], 6);
    });

    it('BatchNorm2d in training mode (batch statistics, running averages) and in eval mode', async () => {
      await compareModule('batch norm train', () => new nn.BatchNorm2d(6), [3, 7, 5, 6], 7);
      await compareModule('batch norm eval', () => new nn.BatchNorm2d(4), [2, 5, 6, 4], 8, false);
    });

    it('ConvModule (conv + BN + ReLU), max and average pooling, adaptive average pooling (PSP bins 1, 2, 3, 6)', async () => {
      await compareModule('ConvModule', () => new nn.ConvModule(4, 6, 3, { padding: 1, norm_cfg: { type: 'BN' } }), [2, 8, 7, 4], 9);
      await compareModule('max pool 2x2', () => new nn.MaxPool2d(2, 2), [2, 10, 8, 3], 10);
      await compareModule('max pool 3x3 s2 p1 (stem)', () => new nn.MaxPool2d(3, 2, 1), [1, 11, 9, 4], 11);
      for (const bins of [1, 2, 3, 6]) await compareModule(`adaptive avg pool ${bins}`, () => new nn.AdaptiveAvgPool2d(bins), [2, 13, 11, 3], 12 + bins);
    });

    it('bilinear resize up and down, align_corners false and true (UNet upsampling, PSP branches, logits to label size)', async () => {
      const resize = (target: [number, number], alignCorners: boolean) =>
        new (class extends nn.Module {
          override forward(x: tf.Tensor4D): tf.Tensor4D {
            return nn.resize(x, target, { alignCorners });
          }
        })();
      await compareModule('resize up ×2', () => resize([14, 10], false), [2, 7, 5, 3], 20);
      await compareModule('resize up align corners', () => resize([13, 17], true), [1, 5, 6, 2], 21);
      await compareModule('resize down', () => resize([4, 3], false), [1, 9, 8, 2], 22);
    });

    it('channel concat (UNet skips, PSP bins)', async () => {
      const concat = new (class extends nn.Module {
        override forward(x: tf.Tensor4D): tf.Tensor4D {
          return tf.concat([x, tf.relu(x), tf.mul(x, 2)], 3) as tf.Tensor4D;
        }
      })();
      await compareModule('concat', () => concat, [2, 5, 4, 3], 30);
    });
  });

  describe('losses, OHEM and the optimizer step on webgpu', () => {
    let kernel: Kernel;
    before(async () => {
      kernel = await createKernel({ plugins: [crossEntropyPlugin, dicePlugin, ohemPlugin], backend: 'cpu', logger: quiet });
    });

    const logitsShape = [2, 9, 7, 3];
    const labelValues = Int32Array.from(random(2 * 9 * 7, 40, 0, 3.4), (v) => (v >= 3 ? 255 : Math.floor(v)));

    async function compareLoss(what: string, loss: Loss, pixelWeight: boolean): Promise<void> {
      const logitValues = random(size(logitsShape), 41, -3, 3);
      const weightValues = random(labelValues.length, 42, 0, 1);
      const run = (): tf.Tensor[] => {
        const logits = variableOf(logitValues, logitsShape);
        const labels = tf.tensor(labelValues, logitsShape.slice(0, 3), 'int32');
        const weight = pixelWeight ? tf.tensor(weightValues, logitsShape.slice(0, 3)) : undefined;
        const { value, grads } = tf.variableGrads(() => loss.forward(logits, labels, { ignoreIndex: 255, weight }) as tf.Scalar, [logits]);
        const results = [value, grads[logits.name]!];
        tf.dispose([logits, labels, weight as tf.Tensor]);
        return results;
      };
      expectClose(await valuesOn('webgpu', run), await valuesOn('cpu', run), what);
    }

    it('CrossEntropyLoss (class weights, avg_non_ignore with the count on the device, pixel weights) and DiceLoss: value and gradient', async () => {
      await compareLoss('CE', kernel.build('losses', { type: 'CrossEntropyLoss', class_weight: [0.8, 1.6, 1.1], avg_non_ignore: true }), true);
      await compareLoss('CE sigmoid', kernel.build('losses', { type: 'CrossEntropyLoss', use_sigmoid: true }), false);
      await compareLoss('Dice', kernel.build('losses', { type: 'DiceLoss' }), false);
    });

    it('OHEMPixelSampler keeps exactly the same pixels as on cpu, probability and loss mode', async () => {
      const shape = [2, 23, 19, 2];
      const logitValues = random(size(shape), 50, -2, 2);
      const labels = Int32Array.from(random(2 * 23 * 19, 51, 0, 2.2), (v) => (v >= 2 ? 255 : Math.floor(v)));
      const ce = kernel.build('losses', { type: 'CrossEntropyLoss', class_weight: [0.8, 1.6] });
      for (const cfg of [{ thresh: 0.7, min_kept: 100 }, { thresh: 0.55, min_kept: 2 }, { min_kept: 150 }, { min_kept: 100000 }]) {
        const sampler: PixelSampler = kernel.build('samplers', { type: 'OHEMPixelSampler', ...cfg }, { path: 'sampler' });
        const run = () => [sampler.sample(tf.tensor(logitValues, shape), tf.tensor(labels, shape.slice(0, 3), 'int32'), { ignoreIndex: 255, lossDecode: [ce] })];
        // (The inputs above are freed by tidy below.)
        const tidyRun = () => {
          const results = tf.tidy(run);
          return results;
        };
        const [cpuMap] = await valuesOn('cpu', tidyRun);
        const [gpuMap] = await valuesOn('webgpu', tidyRun);
        expect(Array.from(gpuMap!), JSON.stringify(cfg)).to.deep.equal(Array.from(cpuMap!));
        expect(cpuMap!.reduce((a, b) => a + b, 0), `${JSON.stringify(cfg)} keeps some pixels`).to.be.greaterThan(0);
      }
    });

    it('sumTensors of 40 tensors is right on webgpu (split under the storage-buffer limit)', async () => {
      const [sum] = await valuesOn('webgpu', () => [tf.tidy(() => sumTensors(Array.from({ length: 40 }, (_, i) => tf.fill([3, 5], i + 1))))]);
      expect(Array.from(sum!)).to.deep.equal(Array(15).fill(820));
    });
  });

  describe('device errors are errors, never stale numbers', () => {
    afterEach(async () => {
      // A failed device stays failed: start the next test on a fresh one.
      await tf.setBackend('cpu');
      await webGpuBackendProvider.release();
      expect(await webGpuBackendProvider.load({ byName: true })).to.equal(null);
    });

    it('tf.addN over the storage-buffer limit is rejected at the next readback', async () => {
      await tf.setBackend('webgpu');
      const limit = webGpuBackendProvider.activeDevice!.limits.maxStorageBuffersPerShaderStage;
      const inputs = Array.from({ length: limit + 4 }, (_, i) => tf.add(tf.fill([8], i), 0));
      const sum = tf.addN(inputs);
      let error: unknown;
      await sum.data().catch((e: unknown) => (error = e));
      expect(String(error)).to.match(/webgpu: the GPU rejected an operation, so its results are invalid \(GPUValidationError: .*storage buffers/);
      tf.dispose([sum, ...inputs]);
    });

    it('a tensor larger than maxStorageBufferBindingSize is rejected at the next readback', async () => {
      await tf.setBackend('webgpu');
      const limit = webGpuBackendProvider.activeDevice!.limits.maxStorageBufferBindingSize;
      const big = tf.fill([limit / 4 + 1024], 1.5);
      const doubled = tf.mul(big, 2);
      const slice = tf.slice(doubled, [0], [4]);
      let error: unknown;
      await slice.data().catch((e: unknown) => (error = e));
      expect(String(error)).to.match(/webgpu: the GPU rejected an operation, so its results are invalid \(GPUValidationError: .*/);
      tf.dispose([big, doubled, slice]);
    });
  });
});
