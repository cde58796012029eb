import { unpackGeometry, type ConvEngine, type WindowGeometry } from './engine';

/**
 * Convolutions in TypeScript as im2col + GEMM, for machines without the addon: the same
 * decomposition as native/conv.cc (stride-1 input gradient as a flipped convolution, strided one
 * through col2im, filter gradient as im2col^T . dy), with the im2col matrix built a chunk of output
 * pixels at a time so it stays in cache. About 2-4 GFLOP/s on one core: 30x slower than the addon,
 * but 4x tfjs's forward and hundreds of times its filter gradient, so training is possible at all.
 */

/** Output pixels per im2col chunk (the column buffer stays in cache). */
const ROWS_PER_CHUNK = 64;

/**
 * columns(r, (kh, kw, c)) = image at output pixel row0 + r and that tap (zero outside), written to
 * dst[r * rowStride + column * colStride] (colStride 1: row-major; rowStride 1: transposed).
 */
function im2col(image: Float32Array, g: WindowGeometry, row0: number, rows: number, dst: Float32Array, rowStride: number, colStride: number): void {
  for (let r = 0; r < rows; r++) {
    const pixel = row0 + r;
    const ow = pixel % g.outW;
    const oh = Math.floor(pixel / g.outW) % g.outH;
    const b = Math.floor(pixel / (g.outW * g.outH));
    let column = 0;
    for (let kh = 0; kh < g.kH; kh++) {
      const ih = oh * g.strideH - g.padTop + kh * g.dilH;
      for (let kw = 0; kw < g.kW; kw++, column += g.inC) {
        const iw = ow * g.strideW - g.padLeft + kw * g.dilW;
        const out = r * rowStride + column * colStride;
        const inside = ih >= 0 && ih < g.inH && iw >= 0 && iw < g.inW;
        const src = ((b * g.inH + ih) * g.inW + iw) * g.inC;
        if (colStride === 1) {
          if (inside) dst.set(image.subarray(src, src + g.inC), out);
          else dst.fill(0, out, out + g.inC);
        } else {
          for (let c = 0; c < g.inC; c++) dst[out + c * colStride] = inside ? image[src + c] : 0;
        }
      }
    }
  }
}

/**
 * The one GEMM of this engine, as dot products over a shared inner axis:
 * c[cOffset + i*cRowStride + j*cColStride] += sum_p a[aOffset + i*depth + p] * b[j*depth + p].
 * 4x2 register blocking (8 independent sums, one load per multiply-add) is what makes JS fast here;
 * sums are JS numbers (float64).
 */
function dotGemm(a: Float32Array, aOffset: number, b: Float32Array, c: Float32Array, cOffset: number, cRowStride: number, cColStride: number, rows: number, cols: number, depth: number): void {
  const at = (i: number, j: number) => cOffset + i * cRowStride + j * cColStride;
  let i = 0;
  for (; i + 4 <= rows; i += 4) {
    const a0 = aOffset + i * depth, a1 = a0 + depth, a2 = a1 + depth, a3 = a2 + depth;
    let j = 0;
    for (; j + 2 <= cols; j += 2) {
      const b0 = j * depth, b1 = b0 + depth;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
      for (let p = 0; p < depth; p++) {
        const y0 = b[b0 + p], y1 = b[b1 + p];
        let x = a[a0 + p];
        s00 += x * y0; s01 += x * y1;
        x = a[a1 + p];
        s10 += x * y0; s11 += x * y1;
        x = a[a2 + p];
        s20 += x * y0; s21 += x * y1;
        x = a[a3 + p];
        s30 += x * y0; s31 += x * y1;
      }
      c[at(i, j)] += s00; c[at(i, j + 1)] += s01;
      c[at(i + 1, j)] += s10; c[at(i + 1, j + 1)] += s11;
      c[at(i + 2, j)] += s20; c[at(i + 2, j + 1)] += s21;
      c[at(i + 3, j)] += s30; c[at(i + 3, j + 1)] += s31;
    }
    if (j < cols) dotGemmEdge(a, aOffset, b, c, at, i, i + 4, j, cols, depth);
  }
  if (i < rows) dotGemmEdge(a, aOffset, b, c, at, i, rows, 0, cols, depth);
}

function dotGemmEdge(a: Float32Array, aOffset: number, b: Float32Array, c: Float32Array, at: (i: number, j: number) => number, i0: number, i1: number, j0: number, j1: number, depth: number): void {
  for (let i = i0; i < i1; i++)
    for (let j = j0; j < j1; j++) {
      let sum = 0;
      for (let p = 0; p < depth; p++) sum += a[aOffset + i * depth + p] * b[j * depth + p];
      c[at(i, j)] += sum;
    }
}

/** m[rows, cols] -> m^T[cols, rows]. */
function transpose(m: Float32Array, offset: number, rows: number, cols: number, out: Float32Array): Float32Array {
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = m[offset + i * cols + j];
  return out;
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
  const filterT = transpose(filter, 0, k, g.outC, new Float32Array(filter.length)); // [outC, k]
  forEachPixelChunk(g, (row0, rows, columns) => {
    im2col(x, g, row0, rows, columns, k, 1);
    dotGemm(columns, 0, filterT, out, row0 * g.outC, g.outC, 1, rows, g.outC, k);
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
    // columns[rows, k] = dy[rows, outC] * filter[k, outC]^T, then scattered back (col2im)
    const k = g.kH * g.kW * g.inC;
    forEachPixelChunk(g, (row0, rows, columns) => {
      columns.fill(0, 0, rows * k);
      dotGemm(dy, row0 * g.outC, filter, columns, 0, k, 1, rows, k, g.outC);
      col2imAccumulate(columns, g, row0, rows, dx);
    });
  },
  conv2dBackpropFilter(x, dy, dFilter, packed) {
    // dFilter[k, outC] += im2col^T[k, rows] . dy^T[outC, rows], both operands transposed per chunk
    const g = unpackGeometry(packed);
    const k = g.kH * g.kW * g.inC;
    const dyT = new Float32Array(ROWS_PER_CHUNK * g.outC);
    forEachPixelChunk(g, (row0, rows, columnsT) => {
      im2col(x, g, row0, rows, columnsT, 1, rows);
      transpose(dy, row0 * g.outC, rows, g.outC, dyT);
      dotGemm(columnsT, 0, dyT, dFilter, 0, g.outC, 1, k, g.outC, rows);
    });
  },
};
