// Compile-time checks of defineConfig's typing: this file only compiles when a plugin's declaration
// merging gives its `type` names and options their types (the @ts-expect-error lines must be errors).
// open-world-config-types.test.ts compiles configs mixing typed and untyped plugins.
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

  it('accepts a type no plugin in the program declares, with any options', () => {
    // Open world: 'MyLos' may come from a plugin without declarations; the kernel reports it at run
    // time (with the nearest registered name) when no plugin registers it.
    const undeclaredType = defineConfig({ model: { decode_head: { loss_decode: { type: 'MyLos', smooth: 1 } } } });
    expect(undeclaredType.model.decode_head.loss_decode.type).to.equal('MyLos');
  });

  it('rejects a misspelled option or top-level key at compile time', () => {
    const misspelledOption = defineConfig({
      // @ts-expect-error 'loss_wieght' is not an option of MyLoss
      model: { decode_head: { loss_decode: { type: 'MyLoss', loss_wieght: 1 } } },
    });
    const misspelledKey = defineConfig({
      // @ts-expect-error 'optimiser' is not a top-level config key
      optimiser: { type: 'SGD' },
    });
    expect([misspelledOption, misspelledKey]).to.have.length(2);
  });
});
