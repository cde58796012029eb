import { definePlugin, type DatasetConfig, type TransformConfig, type z } from '@segkit/core';
import { CustomDatasetDefinition, type customDatasetSchema } from './custom';
import { CityscapesDatasetDefinition, DRIVEDatasetDefinition, RepeatDatasetDefinition, type repeatSchema } from './builtin';
import { datasetCommands } from './cli';

const { version } = require('../../package.json') as { version: string };

export { CustomDataset, customDatasetSchema, datasetDefinition, type CustomDatasetOptions, type ImageInfo } from './custom';
export { RepeatDataset } from './builtin';
export {
  checkDataset,
  formatDatasetCheck,
  DATASET_PROBLEM_KINDS,
  type CheckableDataset,
  type CheckDatasetOptions,
  type DatasetCheckSummary,
  type DatasetProblem,
  type DatasetProblemKind,
} from './check-dataset';
export { labelValueCounts, badLabelValues, describeBadValues, type LabelRange, type BadLabelValue } from './label-check';
export { CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, CITYSCAPES_LABELS, DRIVE_CLASSES, DRIVE_PALETTE } from './classes';
export { convertDrive, convertCityscapes, renderCityscapesPolygons, type ConvertSummary } from './convert';
export { synthDrive, synthCityscapes, renderRetina, streetScene, type SynthOptions, type SynthSummary } from './synth';
export { fillPolygon } from './raster';
export { readZip } from './zip';
export { scanFiles, resolveDataPath } from './paths';
export { datasetCommands } from './cli';

/** The options of CustomDataset as a config writes them (from its schema), with the pipeline typed per transform. */
type CustomDatasetConfig = Omit<z.input<ReturnType<typeof customDatasetSchema>>, 'pipeline'> & { pipeline?: TransformConfig[] };

declare module '@segkit/core' {
  interface DatasetOptionsMap {
    CustomDataset: CustomDatasetConfig;
    CityscapesDataset: CustomDatasetConfig;
    DRIVEDataset: Omit<CustomDatasetConfig, 'reduce_zero_label'> & { reduce_zero_label?: false };
    RepeatDataset: Omit<z.input<typeof repeatSchema>, 'dataset'> & { dataset: DatasetConfig };
  }
}

export const plugin = definePlugin({
  name: '@segkit/datasets',
  version,
  components: {
    datasets: [CustomDatasetDefinition, CityscapesDatasetDefinition, DRIVEDatasetDefinition, RepeatDatasetDefinition],
  },
  cli: [datasetCommands],
});
