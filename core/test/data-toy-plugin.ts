// A dataset plugin for the data-loader tests; loaded by path, so worker threads can load it too.
import { z } from 'zod';
import { definePlugin } from '../src/plugin-system/plugin';
import { SegkitError } from '../src/errors';
import type { Dataset, PipelineResults, RandomSource } from '../src/components';

const schema = z.object({ length: z.number().int().positive(), size: z.number().int().positive().default(2), fail_at: z.number().int().nullable().default(null) });

export const plugin = definePlugin({
  name: 'toy-datasets',
  version: '0.0.1',
  components: {
    datasets: [
      {
        type: 'ToyDataset',
        schema,
        create(options: z.infer<typeof schema>): Dataset {
          return {
            length: options.length,
            classes: ['a', 'b', 'c'],
            palette: [[0, 0, 0], [1, 1, 1], [2, 2, 2]],
            ignoreIndex: 255,
            async get(index: number, random?: RandomSource): Promise<PipelineResults> {
              if (index === options.fail_at) throw new SegkitError(`toy: sample ${index} is broken`);
              const draw = random ? random.random() : -1;
              const pixels = options.size * options.size;
              return {
                img: { data: new Float32Array(pixels * 3).fill(index + draw), shape: [options.size, options.size, 3] },
                gt_semantic_seg: { data: new Uint8Array(pixels).fill(index % 3), shape: [options.size, options.size] },
                filename: `toy${index}`,
                draw,
              };
            },
            async getGroundTruth() {
              return { data: new Uint8Array(1), shape: [1, 1] };
            },
          };
        },
      },
    ],
  },
});
