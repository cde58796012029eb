// MMSegmentation 0.x `.py` configs: read them as MMCV 1.x's Config.fromfile does (without running Python),
// use them as segkit configs, and convert them to segkit `.ts` configs.
export { loadMmsegConfig, loadMmsegTree, readMmsegConfig, toSegkitConfig } from './loader';
export type { ConfigObject, MmsegBase, MmsegConfigOptions, MmsegFile } from './loader';
export { convertMmsegConfig, writeMmsegConversion } from './convert';
export type { ConvertOptions, ConvertResult, ConvertedFile } from './convert';
export { CORE_TYPES, collectTypes, defaultTypeCatalog, describeUnknownTypes, mapSyncBatchNorm, withOverrides } from './types';
export type { TypeCatalog, TypeCategory, TypedNode } from './types';
export { MMSEG_MODULE_PLUGINS, mapCustomImports } from './custom-imports';
export { parseModule } from './parser';
export { evaluateModule } from './evaluator';
export { tokenize } from './tokenizer';
export { PyDict, PyFloat, PyList, toPlain } from './values';
export type { PlainValue, PyValue } from './values';
