export * from './reduce';
export * from './class-weight';
export * from './labels';
export * from './accuracy';
export * from './parse-losses';
export * from './schemas';
export * from './overlap';
export * from './base-loss';
