import { unpackGeometry, type ConvEngine, type WindowGeometry } from './engine';

/**
 * Convolutions in TypeScript as im2col + GEMM, for machines without the addon: the same
 * decomposition as native/conv.cc, with the im2col matrix built a chunk of output pixels at a time
 * so it stays in cache. Far slower than the addon, but its filter gradient is hundreds of times
 * faster than tfjs's, which makes training possible at all.
 */

/** Output pixels per im2col chunk. */
const ROWS_PER_CHUNK = 32;

/** columns[r, (kh, kw, c)] = image at output pixel row0 + r and that tap (zero outside). */
function im2col(image: Float32Array, g: WindowGeometry, row0: number, rows: number, columns: Float32Array): void {
  const width = g.kH * g.kW * g.inC;
  for (let r = 0; r < rows; r++) {
    const pixel = row0 + r;
    const ow = pixel % g.outW;
    const oh = Math.floor(pixel / g.outW) % g.outH;
    const b = Math.floor(pixel / (g.outW * g.outH));
    let dst = r * width;
    for (let kh = 0; kh < g.kH; kh++) {
      const ih = oh * g.strideH - g.padTop + kh * g.dilH;
      for (let kw = 0; kw < g.kW; kw++, dst += g.inC) {
        const iw = ow * g.strideW - g.padLeft + kw * g.dilW;
        if (ih < 0 || ih >= g.inH || iw < 0 || iw >= g.inW) {
          columns.fill(0, dst, dst + g.inC);
        } else {
          const src = ((b * g.inH + ih) * g.inW + iw) * g.inC;
          columns.set(image.subarray(src, src + g.inC), dst);
        }
      }
    }
  }
}

/** c[cOffset + (rows x n)] += a[rows x k] * b[k x n]; k is blocked so a slab of b stays in cache. */
function gemmAccumulate(a: Float32Array, b: Float32Array, c: Float32Array, cOffset: number, rows: number, n: number, k: number): void {
  const K_BLOCK = 128;
  for (let p0 = 0; p0 < k; p0 += K_BLOCK) {
    const p1 = Math.min(k, p0 + K_BLOCK);
    for (let i = 0; i < rows; i++) {
      const cRow = cOffset + i * n;
      for (let p = p0; p < p1; p++) {
        const aValue = a[i * k + p];
        if (aValue === 0) continue; // padding taps and ReLU zeros are common
        const bRow = p * n;
        for (let j = 0; j < n; j++) c[cRow + j] += aValue * b[bRow + j];
      }
    }
  }
}

/** c[k x n] += a[rows x k]^T * b[bOffset + (rows x n)] (filter gradient accumulation). */
function gemmAccumulateTransposedA(a: Float32Array, b: Float32Array, bOffset: number, c: Float32Array, rows: number, k: number, n: number): void {
  for (let r = 0; r < rows; r++) {
    const bRow = bOffset + r * n;
    for (let p = 0; p < k; p++) {
      const aValue = a[r * k + p];
      if (aValue === 0) continue;
      const cRow = p * n;
      for (let j = 0; j < n; j++) c[cRow + j] += aValue * b[bRow + j];
    }
  }
}

/** c[rows x k] = a[aOffset + (rows x n)] * b[k x n]^T (columns of the input gradient). */
function gemmTransposedB(a: Float32Array, aOffset: number, b: Float32Array, c: Float32Array, rows: number, n: number, k: number): void {
  for (let i = 0; i < rows; i++) {
    const aRow = aOffset + i * n;
    for (let p = 0; p < k; p++) {
      const bRow = p * n;
      let sum = 0;
      for (let j = 0; j < n; j++) sum += a[aRow + j] * b[bRow + j];
      c[i * k + p] = sum;
    }
  }
}

/** Scatter-adds columns (rows of (kh, kw, c)) back onto the image: the adjoint of im2col. */
function col2imAccumulate(columns: Float32Array, g: WindowGeometry, row0: number, rows: number, image: Float32Array): void {
  const width = g.kH * g.kW * g.inC;
  for (let r = 0; r < rows; r++) {
    const pixel = row0 + r;
    const ow = pixel % g.outW;
    const oh = Math.floor(pixel / g.outW) % g.outH;
    const b = Math.floor(pixel / (g.outW * g.outH));
    let src = r * width;
    for (let kh = 0; kh < g.kH; kh++) {
      const ih = oh * g.strideH - g.padTop + kh * g.dilH;
      for (let kw = 0; kw < g.kW; kw++, src += g.inC) {
        const iw = ow * g.strideW - g.padLeft + kw * g.dilW;
        if (ih < 0 || ih >= g.inH || iw < 0 || iw >= g.inW) continue;
        const dst = ((b * g.inH + ih) * g.inW + iw) * g.inC;
        for (let c = 0; c < g.inC; c++) image[dst + c] += columns[src + c];
      }
    }
  }
}

function forEachPixelChunk(g: WindowGeometry, body: (row0: number, rows: number, columns: Float32Array) => void): void {
  const pixels = g.batch * g.outH * g.outW;
  const columns = new Float32Array(ROWS_PER_CHUNK * g.kH * g.kW * g.inC);
  for (let row0 = 0; row0 < pixels; row0 += ROWS_PER_CHUNK) body(row0, Math.min(ROWS_PER_CHUNK, pixels - row0), columns);
}

function conv2dForward(x: Float32Array, filter: Float32Array, out: Float32Array, g: WindowGeometry): void {
  const k = g.kH * g.kW * g.inC;
  forEachPixelChunk(g, (row0, rows, columns) => {
    im2col(x, g, row0, rows, columns);
    gemmAccumulate(columns, filter, out, row0 * g.outC, rows, g.outC, k);
  });
}

/** Stride-1 input gradient = forward conv of dy with the flipped, in/out-swapped filter (as in native/conv.cc). */
function transposedConv(g: WindowGeometry, filter: Float32Array): { geometry: WindowGeometry; filter: Float32Array } {
  const flipped = new Float32Array(filter.length);
  for (let kh = 0; kh < g.kH; kh++)
    for (let kw = 0; kw < g.kW; kw++) {
      const src = ((g.kH - 1 - kh) * g.kW + (g.kW - 1 - kw)) * g.inC * g.outC;
      const dst = (kh * g.kW + kw) * g.outC * g.inC;
      for (let ic = 0; ic < g.inC; ic++) for (let oc = 0; oc < g.outC; oc++) flipped[dst + oc * g.inC + ic] = filter[src + ic * g.outC + oc];
    }
  const geometry: WindowGeometry = {
    ...g,
    inH: g.outH, inW: g.outW, inC: g.outC,
    outH: g.inH, outW: g.inW, outC: g.inC,
    padTop: (g.kH - 1) * g.dilH - g.padTop,
    padLeft: (g.kW - 1) * g.dilW - g.padLeft,
  };
  return { geometry, filter: flipped };
}

export const jsConvEngine: ConvEngine = {
  conv2d(x, filter, out, packed) {
    conv2dForward(x, filter, out, unpackGeometry(packed));
  },
  conv2dBackpropInput(dy, filter, dx, packed) {
    const g = unpackGeometry(packed);
    if (g.strideH === 1 && g.strideW === 1) {
      const transposed = transposedConv(g, filter);
      conv2dForward(dy, transposed.filter, dx, transposed.geometry);
      return;
    }
    const k = g.kH * g.kW * g.inC;
    forEachPixelChunk(g, (row0, rows, columns) => {
      gemmTransposedB(dy, row0 * g.outC, filter, columns, rows, g.outC, k);
      col2imAccumulate(columns, g, row0, rows, dx);
    });
  },
  conv2dBackpropFilter(x, dy, dFilter, packed) {
    const g = unpackGeometry(packed);
    const k = g.kH * g.kW * g.inC;
    forEachPixelChunk(g, (row0, rows, columns) => {
      im2col(x, g, row0, rows, columns);
      gemmAccumulateTransposedA(columns, dy, row0 * g.outC, dFilter, rows, k, g.outC);
    });
  },
};
