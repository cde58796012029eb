import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { classShares, overlayImage, selectWebBackend } from '../src';

describe('@segkit/web', () => {
  afterEach(async () => {
    await tf.setBackend('cpu');
  });

  it("'auto' falls back in order webgpu → webgl → wasm → cpu, saying why each faster one was skipped (Node has none of them)", async () => {
    // @segkit/backend-webgpu's tests (same process) may have installed navigator.gpu: hide it here.
    const holder = globalThis as { navigator?: object };
    const savedNavigator = Object.getOwnPropertyDescriptor(holder, 'navigator');
    Object.defineProperty(holder, 'navigator', { value: {}, configurable: true, writable: true });
    const choice = await selectWebBackend({ backend: 'auto' }).finally(() => {
      if (savedNavigator) Object.defineProperty(holder, 'navigator', savedNavigator);
      else delete holder.navigator;
    });
    expect(choice.name).to.equal('cpu');
    expect(choice.skipped.map((s) => s.name)).to.deep.equal(['webgpu', 'webgl', 'wasm']);
    expect(choice.skipped[0]!.reason).to.equal('navigator.gpu is not available');
    expect(choice.skipped[2]!.reason).to.equal('no wasmPath given (the folder serving tfjs-backend-wasm*.wasm)');
    expect(tf.getBackend()).to.equal('cpu');
  });

  it('a named backend that cannot start is one clear error', async () => {
    let message = '';
    await selectWebBackend({ backend: 'wasm' }).catch((error: Error) => (message = error.message));
    expect(message).to.equal("backend: 'wasm' cannot start here: no wasmPath given (the folder serving tfjs-backend-wasm*.wasm)");
    await selectWebBackend({ backend: 'metal' as never }).catch((error: Error) => (message = error.message));
    expect(message).to.equal("backend: expected 'auto' or one of webgpu, webgl, wasm, cpu, got 'metal'");
  });

  it('overlayImage blends trunc(img·(1−a) + colour·a) into RGBA; classShares counts pixels per class', () => {
    const image = { data: new Uint8ClampedArray([100, 50, 0, 255, 10, 20, 30, 255]), width: 2, height: 1 };
    const overlay = overlayImage(image, Int32Array.from([1, 255]), [[0, 0, 0], [200, 100, 50]], 0.5);
    // pixel 0: (100·0.5 + 200·0.5, 50·0.5 + 100·0.5, 0 + 25) = (150, 75, 25); pixel 1 has no colour: unchanged.
    expect(Array.from(overlay.data)).to.deep.equal([150, 75, 25, 255, 10, 20, 30, 255]);
    expect(classShares(Int32Array.from([0, 1, 1, 1, 255]), 2)).to.deep.equal([0.2, 0.6]);
  });
});
