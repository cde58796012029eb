import { SegkitError, z, type ComponentOf, type Dataset, type NdArray, type PipelineResults, type RandomSource } from '@segkit/core';
import { CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, DRIVE_CLASSES, DRIVE_PALETTE } from './classes';
import { customDatasetSchema, datasetDefinition } from './custom';

export const CityscapesDatasetDefinition = datasetDefinition({
  type: 'CityscapesDataset',
  classes: CITYSCAPES_CLASSES,
  palette: CITYSCAPES_PALETTE,
  defaults: { img_suffix: '_leftImg8bit.png', seg_map_suffix: '_gtFine_labelTrainIds.png' },
  description: 'Cityscapes (19 train ids; leftImg8bit / gtFine labelTrainIds)',
});

const driveDefaults = { img_suffix: '.png', seg_map_suffix: '_manual1.png' };
export const DRIVEDatasetDefinition = datasetDefinition(
  {
    type: 'DRIVEDataset',
    classes: DRIVE_CLASSES,
    palette: DRIVE_PALETTE,
    defaults: driveDefaults,
    description: 'DRIVE retinal vessels (background, vessel)',
  },
  // DRIVE fixes reduce_zero_label to false (label 0 is the background class).
  customDatasetSchema(driveDefaults).extend({
    reduce_zero_label: z.literal(false, { error: 'DRIVEDataset fixes reduce_zero_label to false (0 is the background class)' }).default(false),
  }),
);

export const repeatSchema = z.object({
  dataset: z.record(z.string(), z.unknown(), { error: 'expected the config of the dataset to repeat' }),
  times: z.number().int().positive({ error: 'expected a positive integer' }),
});

/** RepeatDataset(dataset, times): the dataset `times` over (sample i is sample i mod n of the inner one). */
export class RepeatDataset implements Dataset {
  constructor(readonly dataset: Dataset, readonly times: number) {}

  get length(): number {
    return this.times * this.dataset.length;
  }
  get classes() {
    return this.dataset.classes;
  }
  get palette() {
    return this.dataset.palette;
  }
  get ignoreIndex() {
    return this.dataset.ignoreIndex;
  }

  private inner(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) throw new RangeError(`RepeatDataset: index ${index} out of range (length ${this.length})`);
    return index % this.dataset.length;
  }

  get(index: number, random?: RandomSource): Promise<PipelineResults> {
    return this.dataset.get(this.inner(index), random);
  }

  getGroundTruth(index: number): Promise<NdArray> {
    return this.dataset.getGroundTruth(this.inner(index));
  }
}

export const RepeatDatasetDefinition: ComponentOf<'datasets', z.infer<typeof repeatSchema>, Dataset> = {
  type: 'RepeatDataset',
  schema: repeatSchema,
  description: 'repeat a dataset `times` (short epochs for iteration-based training)',
  create(options, ctx) {
    const inner = ctx.build('datasets', options.dataset, 'dataset');
    if (inner.length === 0) throw new SegkitError(`${ctx.path}.dataset: the dataset is empty`);
    return new RepeatDataset(inner, options.times);
  },
};
