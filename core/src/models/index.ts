export * from './decode-head';
export * from './decode-losses';
export * from './inference';
export * from './encoder-decoder';
