export {
  EVAL_METRICS,
  MetricAccumulator,
  intersectAndUnion,
  totalAreaToMetrics,
  classTableRows,
  formatMetricTables,
  prettyTable,
  type EvalMetric,
  type AreaStats,
  type LabelArray,
  type ComputeOptions,
  type EvalResults,
} from './metrics';
