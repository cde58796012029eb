export * from './decode-head';
export * from './inference';
export * from './encoder-decoder';
