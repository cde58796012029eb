import { expect } from 'chai';
import { definePlugin, z, type ComponentOf, type Loss } from '@segkit/core';

// Compile-time checks of the registry contracts: `tsc -b` (part of `npm test`) fails if an
// `@ts-expect-error` below stops being an error, i.e. if definePlugin no longer checks `create`.
describe('registry contracts (compile time)', () => {
  it('definePlugin rejects a create that returns the wrong kind of object, and types ctx.parent', () => {
    const goodLoss: ComponentOf<'losses'> = {
      type: 'ZeroLoss',
      schema: z.object({}),
      create: (_options, ctx) => {
        // A loss's parent is its head: num_classes and ignore_index are typed.
        const numClasses: number | undefined = ctx.parent.numClasses;
        return { lossName: 'loss_zero', usesPixelWeight: false, forward: () => { throw new Error(`not run (${numClasses})`); } } as Loss;
      },
    };
    const plugin = definePlugin({
      name: 'contract-test',
      version: '0.0.0',
      components: {
        losses: [
          goodLoss,
          // @ts-expect-error a loss needs lossName, usesPixelWeight and forward: a bare object is not one
          { type: 'NotALoss', schema: z.object({}), create: () => ({ lossName: 'loss_x' }) },
        ],
        // @ts-expect-error an LR scheduler's parent has maxIters, not paramGroups
        lrSchedulers: [{ type: 'Wrong', schema: z.object({}), create: (_o: unknown, ctx: { parent: { paramGroups: unknown[] } }) => ({ apply: () => ctx.parent.paramGroups, lrAt: () => 0 }) }],
      },
    });
    expect(plugin.name).to.equal('contract-test');
  });
});
