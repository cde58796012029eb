import { definePlugin, type DatasetConfig, type TransformConfig } from '@segkit/core';
import { CustomDatasetDefinition } from './custom';
import { CityscapesDatasetDefinition, DRIVEDatasetDefinition, RepeatDatasetDefinition } from './builtin';
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

type Rgb = [number, number, number];

interface CustomDatasetConfig {
  pipeline?: TransformConfig[];
  img_dir: string;
  img_suffix?: string;
  ann_dir?: string | null;
  seg_map_suffix?: string;
  split?: string | null;
  data_root?: string | null;
  test_mode?: boolean;
  ignore_index?: number;
  reduce_zero_label?: boolean;
  classes?: string[] | string | null;
  palette?: Rgb[] | null;
  gt_seg_map_loader_cfg?: Record<string, unknown> | null;
  file_client_args?: Record<string, unknown>;
}

declare module '@segkit/core' {
  interface DatasetOptionsMap {
    CustomDataset: CustomDatasetConfig;
    CityscapesDataset: CustomDatasetConfig;
    DRIVEDataset: Omit<CustomDatasetConfig, 'reduce_zero_label'> & { reduce_zero_label?: false };
    RepeatDataset: { times: number; dataset: DatasetConfig };
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
