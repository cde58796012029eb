// fast-png 8 is ESM-only with `exports` and no `types` field, which TypeScript's node10 resolution cannot
// follow; Node ≥ 20.19 loads it through require(esm). The part of its API segkit uses:
declare module 'fast-png' {
  export interface DecodedPng {
    width: number;
    height: number;
    /** Bits per sample: 1, 2, 4, 8 or 16 (samples below 8 bits stay packed, rows byte-aligned). */
    depth: number;
    channels: number;
    data: Uint8Array | Uint16Array;
    palette?: number[][];
  }
  export interface ImageData {
    width: number;
    height: number;
    data: Uint8Array | Uint16Array;
    depth?: 8 | 16;
    channels?: number;
  }
  export function decode(data: ArrayBufferLike | ArrayBufferView, options?: { checkCrc?: boolean }): DecodedPng;
  export function encode(png: ImageData, options?: { zlib?: { level?: number } }): Uint8Array;
}
