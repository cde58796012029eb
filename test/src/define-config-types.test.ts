// Compile-time checks of defineConfig's typing: this file only compiles when a plugin's declaration
// merging gives `type` names and options their types (the @ts-expect-error lines must be errors).
import { expect } from 'chai';
import { defineConfig } from '@segkit/core';
import type {} from '@segkit/example-custom-loss';

describe('defineConfig typing', () => {
  it('accepts the types and options that installed plugins declare', () => {
    const config = defineConfig({
      plugins: ['@segkit/example-custom-loss'],
      model: { decode_head: { loss_decode: [{ type: 'MyLoss', loss_weight: 3.0, loss_name: 'loss_my' }] } },
    });
    expect(config.plugins).to.deep.equal(['@segkit/example-custom-loss']);
  });

  it('rejects a misspelled type or option at compile time', () => {
    const misspelledType = defineConfig({
      // @ts-expect-error 'MyLos' is not a registered loss type
      model: { decode_head: { loss_decode: { type: 'MyLos' } } },
    });
    const misspelledOption = defineConfig({
      // @ts-expect-error 'loss_wieght' is not an option of MyLoss
      model: { decode_head: { loss_decode: { type: 'MyLoss', loss_wieght: 1 } } },
    });
    const misspelledKey = defineConfig({
      // @ts-expect-error 'optimiser' is not a top-level config key
      optimiser: { type: 'SGD' },
    });
    expect([misspelledType, misspelledOption, misspelledKey]).to.have.length(3);
  });
});
