export { plotLogCurves, readLogCurves, renderCurvesSvg, type CurveSeries, type PlotOptions, type SvgOptions } from './plot';
export { renderOverlay } from './overlay';
