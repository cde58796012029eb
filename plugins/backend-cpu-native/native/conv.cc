// Convolutions as GEMMs over an implicit im2col matrix, a direct convolution for narrow layers, and the
// direct depthwise kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "ops.h"
#include "thread_pool.h"
#include "workspace.h"
#include "winograd.h"

namespace segkit {
namespace {

/**
 * The im2col matrix of an NHWC image batch: row = output pixel (b, oh, ow), column = filter tap and
 * input channel (kh, kw, c); out-of-image taps read as zero. Tiles are copied on demand by the GEMM's
 * packing, so the matrix is never materialised.
 */
class Im2colView final : public MatrixView {
 public:
  Im2colView(const float* image, const WindowGeometry& g) : image_(image), g_(g) {}

  void copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                int64_t dstColStride) const override {
    if (col0 % g_.inC + cols <= g_.inC) {
      copySingleTapTile(row0, rows, col0, cols, dst, dstRowStride, dstColStride);
      return;
    }
    const WindowGeometry& g = g_;
    int64_t ow = row0 % g.outW;
    int64_t oh = (row0 / g.outW) % g.outH;
    int64_t b = row0 / (g.outW * g.outH);
    const int64_t firstTap = col0 / g.inC;
    const int64_t firstChannel = col0 % g.inC;
    for (int64_t r = 0; r < rows; ++r) {
      float* out = dst + r * dstRowStride;
      const int64_t ihOrigin = oh * g.strideH - g.padTop;
      const int64_t iwOrigin = ow * g.strideW - g.padLeft;
      const float* imageB = image_ + b * g.inH * g.inW * g.inC;
      int64_t kh = firstTap / g.kW, kw = firstTap % g.kW, c = firstChannel;
      for (int64_t col = 0; col < cols;) {
        const int64_t run = std::min(g.inC - c, cols - col);  // contiguous channels of one tap
        const int64_t ih = ihOrigin + kh * g.dilH;
        const int64_t iw = iwOrigin + kw * g.dilW;
        float* runDst = out + col * dstColStride;
        if (ih >= 0 && ih < g.inH && iw >= 0 && iw < g.inW) {
          const float* src = imageB + (ih * g.inW + iw) * g.inC + c;
          if (dstColStride == 1) {
            std::memcpy(runDst, src, sizeof(float) * run);
          } else {
            for (int64_t i = 0; i < run; ++i) runDst[i * dstColStride] = src[i];
          }
        } else {
          for (int64_t i = 0; i < run; ++i) runDst[i * dstColStride] = 0.0f;
        }
        col += run;
        c = 0;
        if (++kw == g.kW) {
          kw = 0;
          ++kh;
        }
      }
      if (++ow == g.outW) {
        ow = 0;
        if (++oh == g.outH) {
          oh = 0;
          ++b;
        }
      }
    }
  }

 private:
  /**
   * A tile whose columns are channels of one filter tap (every B sliver and A panel of a layer with
   * at least as many channels as the tile is wide): its rows are pixels of the image shifted by the
   * tap, so it is copied by runs of output pixels along an image row, the bounds checked once per run
   * instead of once per pixel (the per-pixel walk was a quarter of a 32->32 filter gradient's time).
   */
  void copySingleTapTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                         int64_t dstColStride) const {
    const WindowGeometry& g = g_;
    const int64_t tap = col0 / g.inC, channel = col0 % g.inC;
    const int64_t rowShift = (tap / g.kW) * g.dilH - g.padTop;
    const int64_t columnShift = (tap % g.kW) * g.dilW - g.padLeft;
    const int64_t sourcePixelStep = g.strideW * g.inC;
    auto zero = [&](float* out, int64_t pixels) {
      for (int64_t p = 0; p < pixels; ++p)
        for (int64_t c = 0; c < cols; ++c) out[p * dstRowStride + c * dstColStride] = 0.0f;
    };
    for (int64_t r = 0; r < rows;) {
      const int64_t row = row0 + r;
      const int64_t ow = row % g.outW, oh = (row / g.outW) % g.outH, b = row / (g.outW * g.outH);
      const int64_t run = std::min(rows - r, g.outW - ow);  // output pixels left on this output row
      float* out = dst + r * dstRowStride;
      const int64_t ih = oh * g.strideH + rowShift;
      if (ih < 0 || ih >= g.inH) {
        zero(out, run);
        r += run;
        continue;
      }
      // Output columns ow .. ow + run read input columns iw = o * strideW + columnShift: those inside
      // the image are a contiguous range of o.
      const int64_t firstInside = std::clamp(ceilDivision(-columnShift, g.strideW), ow, ow + run);
      const int64_t endInside = std::clamp(ceilDivision(g.inW - columnShift, g.strideW), firstInside, ow + run);
      zero(out, firstInside - ow);
      const float* src = image_ + ((b * g.inH + ih) * g.inW + firstInside * g.strideW + columnShift) * g.inC + channel;
      float* insideOut = out + (firstInside - ow) * dstRowStride;
      const int64_t inside = endInside - firstInside;
      if (dstColStride == 1) {
        for (int64_t p = 0; p < inside; ++p) {
          const float* from = src + p * sourcePixelStep;
          float* to = insideOut + p * dstRowStride;
          for (int64_t c = 0; c < cols; ++c) to[c] = from[c];
        }
      } else if (dstRowStride == 1) {
        // An A panel (pixels down its rows): the pixels' channel runs, a constant stride apart, transposed
        // in 4 x 4 blocks instead of one scattered store per float (b4 8x8 512->512 grad-input 4.04 ->
        // 3.95 ms, 1024->512 8.02 -> 7.88).
        copyTransposed(src, sourcePixelStep, insideOut, dstColStride, cols, inside);
      } else {
        for (int64_t p = 0; p < inside; ++p) {
          const float* from = src + p * sourcePixelStep;
          float* to = insideOut + p * dstRowStride;
          for (int64_t c = 0; c < cols; ++c) to[c * dstColStride] = from[c];
        }
      }
      zero(insideOut + inside * dstRowStride, ow + run - endInside);
      r += run;
    }
  }

  /** ceil(a / b) for b > 0 and any sign of a. */
  static int64_t ceilDivision(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

  const float* image_;
  WindowGeometry g_;
};

int64_t outputPixels(const WindowGeometry& g) { return g.batch * g.outH * g.outW; }
int64_t filterRows(const WindowGeometry& g) { return g.kH * g.kW * g.inC; }

// Up to this many output pixels conv2d's GEMM reads the filter in place instead of packing it.
constexpr int64_t kInPlaceFilterMaxPixels = 1024;

/**
 * Stride-1 backprop-input is a forward convolution of dy with the spatially flipped, in/out-swapped
 * filter and complementary padding; this builds that geometry.
 */
WindowGeometry transposedConvGeometry(const WindowGeometry& g) {
  WindowGeometry t = g;
  t.inH = g.outH, t.inW = g.outW, t.inC = g.outC;
  t.outH = g.inH, t.outW = g.inW, t.outC = g.inC;
  t.padTop = (g.kH - 1) * g.dilH - g.padTop;
  t.padLeft = (g.kW - 1) * g.dilW - g.padLeft;
  return t;
}

/**
 * The flipped, in/out-swapped filter of transposedConvGeometry as a GEMM operand, read straight from
 * the original filter [kH, kW, inC, outC]: row = (tap, oc), column = ic, value filter[flipped tap, ic, oc].
 * Materialising it was a strided transpose of the whole filter on every call (for a 3x3x1024x1024
 * filter, six times the convolution itself); packed here, each copy runs along contiguous oc.
 */
class FlippedSwappedFilterView final : public MatrixView {
 public:
  FlippedSwappedFilterView(const float* filter, const WindowGeometry& g) : filter_(filter), g_(g) {}

  void copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                int64_t dstColStride) const override {
    const WindowGeometry& g = g_;
    for (int64_t r = 0; r < rows;) {
      const int64_t row = row0 + r;
      const int64_t tap = row / g.outC, oc = row % g.outC;
      const int64_t run = std::min(g.outC - oc, rows - r);
      const int64_t flippedTap = (g.kH - 1 - tap / g.kW) * g.kW + (g.kW - 1 - tap % g.kW);
      const float* tapFilter = filter_ + flippedTap * g.inC * g.outC + oc;
      if (dstColStride == 1) {  // a B sliver: rows of output channels, read as columns of the filter
        copyTransposed(tapFilter + col0 * g.outC, g.outC, dst + r * dstRowStride, dstRowStride, run, cols);
        r += run;
        continue;
      }
      for (int64_t c = 0; c < cols; ++c) {
        const float* src = tapFilter + (col0 + c) * g.outC;
        float* out = dst + r * dstRowStride + c * dstColStride;
        for (int64_t i = 0; i < run; ++i) out[i * dstRowStride] = src[i];
      }
      r += run;
    }
  }

 private:
  const float* filter_;
  WindowGeometry g_;
};

// Pixels a partial register tile of directConvolutionRow reads past a row's last.
constexpr int64_t kDirectTileOverread = 24;

/**
 * The grid of paddedFilterGradient, the filter gradient of a stride-1 window as one GEMM without
 * im2col. With x zero-padded to xp [batch, height, width, inC] (height = outH + (kH-1) dilH: the
 * window's whole reach) and dy read on the same grid as dyp (zero past outH x outW), output pixel q of
 * the grid reads tap (kh, kw) at xp row q + kh dilH width + kw dilW. So
 *   dFilter^T[oc, (tap, c)] = sum over q of dyp[q, oc] * xp[q + offset(tap), c]:
 * a GEMM whose B, xp shifted per tap, the micro-kernel reads in place (every `lanes` channels of a
 * row are contiguous, rows inC floats apart), and whose reduction over the padded pixels the GEMM
 * splits between threads. im2col copied each x value 9 times into packed slivers that fed only the
 * few output channels of a narrow layer: half of a 32->32 gradient's time on 128x128 maps.
 */
struct PaddedGrid {
  explicit PaddedGrid(const WindowGeometry& g)
      : height(g.outH + (g.kH - 1) * g.dilH), width(g.outW + (g.kW - 1) * g.dilW), cells(g.batch * height * width),
        tailCells((g.kH - 1) * g.dilH * width + (g.kW - 1) * g.dilW) {}
  int64_t height, width;
  int64_t cells;      // batch x height x width: the GEMM's reduction
  int64_t tailCells;  // zero cells after the last image, read by the furthest tap of the last cells
};

/** xp shifted per tap, the GEMM's B: row q, column (tap, c) = xp[q + offset(tap), c]. */
class ShiftedPaddedImageView final : public MatrixView {
 public:
  ShiftedPaddedImageView(const float* padded, const WindowGeometry& g, int64_t paddedWidth)
      : padded_(padded), g_(g), paddedWidth_(paddedWidth) {}

  void copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                int64_t dstColStride) const override {
    for (int64_t col = 0; col < cols; ++col) {
      const float* src = source(row0, col0 + col);
      for (int64_t r = 0; r < rows; ++r) dst[r * dstRowStride + col * dstColStride] = src[r * g_.inC];
    }
  }
  const float* columnVector(int64_t row, int64_t col0, int64_t /*lanes*/) const override { return source(row, col0); }
  int64_t vectorRowStride() const override { return g_.inC; }

 private:
  // Where column col = (tap, channel) of row q lives in the padded image.
  const float* source(int64_t q, int64_t col) const {
    const int64_t tap = col / g_.inC, channel = col % g_.inC;
    const int64_t offset = (tap / g_.kW) * g_.dilH * paddedWidth_ + (tap % g_.kW) * g_.dilW;
    return padded_ + (q + offset) * g_.inC + channel;
  }

  const float* padded_;
  WindowGeometry g_;
  int64_t paddedWidth_;
};

/**
 * dy laid on paddedFilterGradient's padded grid, transposed: row = output channel, column = cell q
 * of the [batch, Hp, Wp] grid, zero at cells past outH x outW (so that the GEMM can run over every
 * cell, whatever its taps read). Packed straight from dy instead of a padded copy of it.
 */
class PaddedGridGradientView final : public MatrixView {
 public:
  PaddedGridGradientView(const float* dy, const WindowGeometry& g, int64_t paddedHeight, int64_t paddedWidth)
      : dy_(dy), g_(g), paddedHeight_(paddedHeight), paddedWidth_(paddedWidth) {}

  void copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                int64_t dstColStride) const override {
    int64_t w = col0 % paddedWidth_, h = (col0 / paddedWidth_) % paddedHeight_, b = col0 / (paddedWidth_ * paddedHeight_);
    for (int64_t col = 0; col < cols; ++col) {
      float* out = dst + col * dstColStride;
      if (h < g_.outH && w < g_.outW) {
        const float* src = dy_ + ((b * g_.outH + h) * g_.outW + w) * g_.outC + row0;
        if (dstRowStride == 1) {  // an A panel's column: contiguous, and the loop vectorised
          for (int64_t r = 0; r < rows; ++r) out[r] = src[r];
        } else {
          for (int64_t r = 0; r < rows; ++r) out[r * dstRowStride] = src[r];
        }
      } else {
        for (int64_t r = 0; r < rows; ++r) out[r * dstRowStride] = 0.0f;
      }
      if (++w == paddedWidth_) {
        w = 0;
        if (++h == paddedHeight_) h = 0, ++b;
      }
    }
  }

 private:
  const float* dy_;
  WindowGeometry g_;
  int64_t paddedHeight_, paddedWidth_;
};

/** Whether g is a stride-1 window whose image lies inside its padded grid (no cropping 'valid'-style past its far edges). */
bool imageInsidePaddedGrid(const WindowGeometry& g) {
  if (g.strideH != 1 || g.strideW != 1) return false;
  const PaddedGrid grid(g);
  return g.padTop >= 0 && g.padLeft >= 0 && grid.height >= g.padTop + g.inH && grid.width >= g.padLeft + g.inW;
}

}  // namespace

/**
 * paddedFilterGradient applies to g (stride 1, whole vectors of input channels, the padded image
 * within the workspace cache's largest block), and g is a narrow layer over a large map. Measured on
 * a 2-core AVX-512 EPYC (bench/backend-native.js shapes) against the best of im2col and F(4,3):
 * b4 64x64 16->16 0.43 against 0.65 ms, b2 128x128 32->32 1.94 / 2.15, 32->64 3.85 / 3.93, b4 64x64
 * 64->64 3.86 / 3.96; from 128 input channels into at most 64 (b4 64x64 128->64: 7.6 / 8.4, 128->32:
 * 3.9 / 5.6; b1 64x64 128->64: 1.9 / 2.1); slower from 128 output channels (b4 32x32 64->128: 2.04 /
 * 1.87) and on 128 -> 128 (3.9 / 3.0), whose reductions into the larger filter gradient the GEMM no
 * longer splits.
 */
bool paddedFilterGradientPays(const WindowGeometry& g) {
  // The whole padded image, one workspace block (the GEMM reads it all).
  const PaddedGrid grid(g);
  const bool fits = (grid.cells + grid.tailCells) * g.inC <= static_cast<int64_t>(Workspace::kMaxCachedBytes / sizeof(float));
  return imageInsidePaddedGrid(g) && fits && g.inC % microKernelLanes() == 0 && g.inC <= 128 && g.outC <= 64 &&
         outputPixels(g) >= 4096;
}

bool directConvolutionApplies(const WindowGeometry& g) {
  return g.dilH == 1 && g.dilW == 1 && g.outC % microKernelLanes() == 0 && imageInsidePaddedGrid(g);
}

bool directFilterGradientApplies(const WindowGeometry& g) {
  return g.kW == 3 && g.strideH == 1 && g.strideW == 1 && g.dilH == 1 && g.dilW == 1 && g.padTop >= 0 && g.padLeft >= 0 &&
         g.outC % microKernelLanes() == 0;
}

namespace {

/** Row `row` (image b = row / height) of x zero-padded onto the grid (image at padTop, padLeft): zeros, the image row (if any), zeros. */
void fillPaddedRow(const float* x, const WindowGeometry& g, const PaddedGrid& grid, int64_t row, float* xRow) {
  const int64_t b = row / grid.height, ih = row % grid.height - g.padTop;
  if (ih >= 0 && ih < g.inH) {
    std::fill(xRow, xRow + g.padLeft * g.inC, 0.0f);
    std::memcpy(xRow + g.padLeft * g.inC, x + (b * g.inH + ih) * g.inW * g.inC, sizeof(float) * g.inW * g.inC);
    std::fill(xRow + (g.padLeft + g.inW) * g.inC, xRow + grid.width * g.inC, 0.0f);
  } else {
    std::fill(xRow, xRow + grid.width * g.inC, 0.0f);
  }
}

/** x zero-padded onto the grid, and zeros from the grid's end up to totalCells. */
void fillPaddedGrid(const float* x, const WindowGeometry& g, const PaddedGrid& grid, int64_t totalCells, float* padded) {
  parallelRanges(g.batch * grid.height, 4, [&](int64_t first, int64_t last) {
    for (int64_t row = first; row < last; ++row) fillPaddedRow(x, g, grid, row, padded + row * grid.width * g.inC);
  });
  std::fill(padded + grid.cells * g.inC, padded + totalCells * g.inC, 0.0f);
}

void paddedFilterGradient(const float* x, const float* dy, float* dFilter, const WindowGeometry& g) {
  const PaddedGrid grid(g);
  Workspace paddedX((grid.cells + grid.tailCells) * g.inC);
  fillPaddedGrid(x, g, grid, grid.cells + grid.tailCells, paddedX.get());
  gemm(PaddedGridGradientView(dy, g, grid.height, grid.width), ShiftedPaddedImageView(paddedX.get(), g, grid.width),
       OutputMatrix{dFilter, 1, g.outC}, g.outC, filterRows(g), grid.cells, false);
}

// Output rows per call of directFilterGradientRows: the input rows they read (2 more) and their dy
// stay in L1 / L2 while the filter rows and channel tiles go over them.
constexpr int64_t kDirectGradientRowBlock = 4;

/**
 * The filter gradient computed directly from x and dy (directFilterGradientRows): each thread sums its
 * share of the output rows into its own copy of dFilter, in registers tile by tile (a filter row's 3
 * taps x a few channels x 1-2 vectors of output channels); the copies are added at the end. No im2col,
 * padded or packed copy of x or dy: the padding is skipped, not read.
 */
void directFilterGradient(const float* x, const float* dy, float* dFilter, const WindowGeometry& g) {
  const int64_t filterFloats = g.kH * g.kW * g.inC * g.outC;
  const int64_t rows = g.batch * g.outH;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(numThreads(), rows / kDirectGradientRowBlock));
  Workspace partials(parts * filterFloats);
  parallelFor(parts, [&](int64_t part) {
    float* sums = partials.get() + part * filterFloats;
    std::fill(sums, sums + filterFloats, 0.0f);
    const int64_t end = (part + 1) * rows / parts;
    for (int64_t row = part * rows / parts; row < end;) {
      const int64_t b = row / g.outH, h = row % g.outH;
      const int64_t count = std::min({kDirectGradientRowBlock, end - row, g.outH - h});
      for (int64_t kh = 0; kh < g.kH; ++kh) {
        // Output rows h.. read input rows h + kh - padTop..: only those inside the image.
        const int64_t first = std::max<int64_t>(h, g.padTop - kh), last = std::min(h + count, g.inH + g.padTop - kh);
        if (first >= last) continue;
        directFilterGradientRows(x + ((b * g.inH + first + kh - g.padTop) * g.inW) * g.inC, g.inC, g.inW * g.inC, g.inW, g.padLeft,
                                 dy + ((b * g.outH + first) * g.outW) * g.outC, g.outC, g.outW * g.outC, last - first, g.outW,
                                 sums + kh * g.kW * g.inC * g.outC, g.inC * g.outC);
      }
      row += count;
    }
  });
  // A narrow layer's few thousand weights: summed on this thread, cheaper than waking the pool again.
  for (int64_t i = 0; i < filterFloats; ++i) {
    float sum = partials.get()[i];
    for (int64_t part = 1; part < parts; ++part) sum += partials.get()[part * filterFloats + i];
    dFilter[i] = sum;
  }
}

// Output rows per band of paddedConvolution: the band's padded rows (2 more for a 3-high window) are
// made and read by one thread while in L1 / L2 (b4 64x64 16 channels: 10 rows of 42 KB).
constexpr int64_t kDirectBandRows = 8;

/**
 * A stride-1 convolution computed directly on the padded grid (directConvolutionRow), filter
 * [taps][inC][outC]: output pixel (h, w) reads tap (kh, kw) at grid cell (h + kh dilH, w + kw dilW),
 * so every tap of a row of pixels is one run of the grid read in place; no im2col copy, no transform.
 * Each thread pads its own bands of rows and computes them: one pass over the pool, where padding the
 * whole image first took a second and the copy left the caches (2-core AVX-512 EPYC, 16->16: b4 64x64
 * forward 0.38 -> 0.35 ms, grad-input 0.37 -> 0.30; b2 128x128 forward 0.73 -> 0.58).
 */
void paddedConvolution(const float* x, const float* filter, float* out, const WindowGeometry& g) {
  const PaddedGrid grid(g);
  const int64_t reach = (g.kH - 1) * g.dilH;  // padded rows past a band's last output row
  std::vector<int64_t> tapOffsets;
  for (int64_t kh = 0; kh < g.kH; ++kh)
    for (int64_t kw = 0; kw < g.kW; ++kw) tapOffsets.push_back((kh * g.dilH * grid.width + kw * g.dilW) * g.inC);
  const bool rowsOf3 = g.kW == 3 && g.dilW == 1;
  const int64_t bandsPerImage = (g.outH + kDirectBandRows - 1) / kDirectBandRows;
  const int64_t bandFloats = ((kDirectBandRows + reach) * grid.width + kDirectTileOverread) * g.inC;
  parallelRanges(g.batch * bandsPerImage, 1, [&](int64_t first, int64_t last) {
    Workspace band(bandFloats);
    for (int64_t index = first; index < last; ++index) {
      const int64_t b = index / bandsPerImage, h0 = (index % bandsPerImage) * kDirectBandRows;
      const int64_t rows = std::min(kDirectBandRows, g.outH - h0);
      for (int64_t r = 0; r < rows + reach; ++r)
        fillPaddedRow(x, g, grid, b * grid.height + h0 + r, band.get() + r * grid.width * g.inC);
      float* tail = band.get() + (rows + reach) * grid.width * g.inC;
      std::fill(tail, tail + kDirectTileOverread * g.inC, 0.0f);
      for (int64_t r = 0; r < rows; ++r)
        directConvolutionRow(band.get() + r * grid.width * g.inC, tapOffsets.data(), static_cast<int64_t>(tapOffsets.size()), g.inC,
                             filter, g.outC, out + ((b * g.outH + h0 + r) * g.outW) * g.outC, g.outW, rowsOf3);
    }
  });
}

/** A 1x1, stride-1, unpadded window: its im2col matrix is the image itself ([pixels, inC], row-major). */
bool isPointwise(const WindowGeometry& g) {
  return g.kH == 1 && g.kW == 1 && g.strideH == 1 && g.strideW == 1 && g.padTop == 0 && g.padLeft == 0 &&
         g.outH == g.inH && g.outW == g.inW;
}

/** Runs use(im2col(x)) with the cheapest view of it: the image as a plain matrix where the window is pointwise. */
template <typename Use>
void withColumns(const float* x, const WindowGeometry& g, Use use) {
  if (isPointwise(g)) {
    use(StridedView(x, g.inC, 1));
  } else {
    use(Im2colView(x, g));
  }
}

// out[pixels, outC] = im2col(x)[pixels, taps*inC] * filter[taps*inC, outC]
void convolve(const float* x, const MatrixView& filter, float* out, const WindowGeometry& g) {
  withColumns(x, g, [&](const MatrixView& columns) {
    gemm(columns, filter, OutputMatrix{out, g.outC, 1}, outputPixels(g), g.outC, filterRows(g), false);
  });
}


}  // namespace

/** Tile size of a Winograd algorithm, or 0 for im2col. */
int tileOf(ConvAlgorithm algorithm) {
  switch (algorithm) {
    case ConvAlgorithm::WinogradF2:
      return 2;
    case ConvAlgorithm::WinogradF4:
      return 4;
    default:
      return 0;
  }
}
void conv2d(const float* x, const float* filter, float* out, const WindowGeometry& g) {
  const ConvAlgorithm algorithm = chooseConvAlgorithm(g);
  if (algorithm == ConvAlgorithm::Direct) {
    paddedConvolution(x, filter, out, g);
    return;
  }
  if (const int tile = tileOf(algorithm)) {
    winogradConv2d(x, filter, out, g, tile, false);
    return;
  }
  // On small maps the filter outweighs the image, and packing it was copying 9 inC x outC floats for
  // a few hundred output pixels: the micro-kernel reads it in place there (2-core AVX-512 EPYC, b4
  // 4x4 512->1024: 2.35 -> 2.04 ms; 8x8 512->512: 3.76 -> 3.62; from 16x16 no difference).
  if (outputPixels(g) <= kInPlaceFilterMaxPixels && g.outC % microKernelLanes() == 0) {
    convolve(x, InPlaceRowMajorView(filter, g.outC), out, g);
    return;
  }
  convolve(x, StridedView(filter, g.outC, 1), out, g);
}

void conv2dBackpropInput(const float* dy, const float* filter, float* dx, const WindowGeometry& g) {
  if (g.strideH == 1 && g.strideW == 1) {
    const WindowGeometry transposed = transposedConvGeometry(g);
    const ConvAlgorithm algorithm = chooseConvAlgorithm(transposed);
    if (algorithm == ConvAlgorithm::Direct) {
      // The flipped, in/out-swapped filter as [taps][outC][inC]: a transpose of each tap.
      const int64_t taps = g.kH * g.kW;
      Workspace swapped(taps * g.inC * g.outC);
      for (int64_t tap = 0; tap < taps; ++tap)
        copyTransposed(filter + (taps - 1 - tap) * g.inC * g.outC, g.outC, swapped.get() + tap * g.outC * g.inC, g.inC, g.outC, g.inC);
      paddedConvolution(dy, swapped.get(), dx, transposed);
      return;
    }
    if (const int tile = tileOf(algorithm)) {
      winogradConv2d(dy, filter, dx, transposed, tile, true);
      return;
    }
    convolve(dy, FlippedSwappedFilterView(filter, g), dx, transposed);
    return;
  }
  // Strided: per image, columns = dy * filter^T, then scatter-add the columns back (col2im).
  const int64_t pixels = g.outH * g.outW;
  const int64_t taps = g.kH * g.kW;
  Workspace columns(pixels * taps * g.inC);
  for (int64_t b = 0; b < g.batch; ++b) {
    const float* dyB = dy + b * pixels * g.outC;
    float* dxB = dx + b * g.inH * g.inW * g.inC;
    gemm(StridedView(dyB, g.outC, 1), StridedView(filter, 1, g.outC), OutputMatrix{columns.get(), taps * g.inC, 1},
         pixels, taps * g.inC, g.outC, false);
    std::fill(dxB, dxB + g.inH * g.inW * g.inC, 0.0f);
    forEachImageChannelSlice(1, g.inC, [&](int64_t, int64_t c0, int64_t c1) {
      for (int64_t oh = 0; oh < g.outH; ++oh)
        for (int64_t ow = 0; ow < g.outW; ++ow) {
          const float* column = columns.get() + (oh * g.outW + ow) * taps * g.inC;
          for (int64_t kh = 0; kh < g.kH; ++kh) {
            const int64_t ih = oh * g.strideH - g.padTop + kh * g.dilH;
            if (ih < 0 || ih >= g.inH) continue;
            for (int64_t kw = 0; kw < g.kW; ++kw) {
              const int64_t iw = ow * g.strideW - g.padLeft + kw * g.dilW;
              if (iw < 0 || iw >= g.inW) continue;
              const float* src = column + (kh * g.kW + kw) * g.inC;
              float* dst = dxB + (ih * g.inW + iw) * g.inC;
              for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
            }
          }
        }
    });
  }
}

void conv2dBackpropFilter(const float* x, const float* dy, float* dFilter, const WindowGeometry& g) {
  const ConvAlgorithm algorithm = chooseFilterGradientAlgorithm(g);
  if (algorithm == ConvAlgorithm::Direct) {
    directFilterGradient(x, dy, dFilter, g);
    return;
  }
  if (algorithm == ConvAlgorithm::PaddedGemm) {
    paddedFilterGradient(x, dy, dFilter, g);
    return;
  }
  if (const int tile = tileOf(algorithm)) {
    winogradConv2dBackpropFilter(x, dy, dFilter, g, tile);
    return;
  }
  // With fewer output pixels than output channels (the deep, small feature maps), compute
  // im2col(x)^T * dy, whose result rows are dFilter's contiguous rows: scattering the transposed
  // product below then costs more than the product (3x3x1024x1024 from 64 pixels: 33 -> 22 ms);
  // elsewhere the orientation below packs faster (measured both ways from 64 to 4096 pixels).
  withColumns(x, g, [&](const MatrixView& columns) {
    if (outputPixels(g) < g.outC) {
      gemm(TransposedView(columns), StridedView(dy, g.outC, 1), OutputMatrix{dFilter, g.outC, 1}, filterRows(g), g.outC,
           outputPixels(g), false);
      return;
    }
    // dFilter^T[outC, taps*inC] = dy^T[outC, pixels] * im2col(x)[pixels, taps*inC], written transposed
    // into dFilter. This orientation packs im2col as the B operand, in runs of 16 channels per pixel
    // (as A it would be runs of 6), which is what bounds this GEMM's speed.
    gemm(StridedView(dy, 1, g.outC), columns, OutputMatrix{dFilter, 1, g.outC}, g.outC, filterRows(g), outputPixels(g),
         false);
  });
}

// Depthwise: output channel o = c * multiplier + q reads input channel c with filter[kh, kw, c, q]
// (the filter's last two axes flattened are exactly the output channel).

void depthwiseConv2d(const float* x, const float* filter, float* out, const WindowGeometry& g) {
  const int64_t multiplier = g.outC / g.inC;
  parallelRanges(g.batch * g.outH, 1, [&](int64_t rowBegin, int64_t rowEnd) {
    for (int64_t row = rowBegin; row < rowEnd; ++row) {
      const int64_t b = row / g.outH, oh = row % g.outH;
      for (int64_t ow = 0; ow < g.outW; ++ow) {
        float* o = out + (row * g.outW + ow) * g.outC;
        std::fill(o, o + g.outC, 0.0f);
        for (int64_t kh = 0; kh < g.kH; ++kh) {
          const int64_t ih = oh * g.strideH - g.padTop + kh * g.dilH;
          if (ih < 0 || ih >= g.inH) continue;
          for (int64_t kw = 0; kw < g.kW; ++kw) {
            const int64_t iw = ow * g.strideW - g.padLeft + kw * g.dilW;
            if (iw < 0 || iw >= g.inW) continue;
            const float* xp = x + ((b * g.inH + ih) * g.inW + iw) * g.inC;
            const float* wp = filter + (kh * g.kW + kw) * g.outC;
            if (multiplier == 1) {
              for (int64_t c = 0; c < g.inC; ++c) o[c] += xp[c] * wp[c];
            } else {
              for (int64_t o2 = 0; o2 < g.outC; ++o2) o[o2] += xp[o2 / multiplier] * wp[o2];
            }
          }
        }
      }
    }
  });
}

void depthwiseConv2dBackpropInput(const float* dy, const float* filter, float* dx, const WindowGeometry& g) {
  const int64_t multiplier = g.outC / g.inC;
  std::fill(dx, dx + g.batch * g.inH * g.inW * g.inC, 0.0f);
  forEachImageChannelSlice(g.batch, g.inC, [&](int64_t b, int64_t c0, int64_t c1) {
    for (int64_t oh = 0; oh < g.outH; ++oh)
      for (int64_t ow = 0; ow < g.outW; ++ow) {
        const float* dyp = dy + ((b * g.outH + oh) * g.outW + ow) * g.outC;
        for (int64_t kh = 0; kh < g.kH; ++kh) {
          const int64_t ih = oh * g.strideH - g.padTop + kh * g.dilH;
          if (ih < 0 || ih >= g.inH) continue;
          for (int64_t kw = 0; kw < g.kW; ++kw) {
            const int64_t iw = ow * g.strideW - g.padLeft + kw * g.dilW;
            if (iw < 0 || iw >= g.inW) continue;
            float* dxp = dx + ((b * g.inH + ih) * g.inW + iw) * g.inC;
            const float* wp = filter + (kh * g.kW + kw) * g.outC;
            for (int64_t c = c0; c < c1; ++c) {
              float sum = 0.0f;
              for (int64_t q = 0; q < multiplier; ++q) sum += dyp[c * multiplier + q] * wp[c * multiplier + q];
              dxp[c] += sum;
            }
          }
        }
      }
  });
}

void depthwiseConv2dBackpropFilter(const float* x, const float* dy, float* dFilter, const WindowGeometry& g) {
  const int64_t multiplier = g.outC / g.inC;
  std::fill(dFilter, dFilter + g.kH * g.kW * g.outC, 0.0f);
  // Slices over channels only: every image writes the same filter entries.
  forEachImageChannelSlice(1, g.inC, [&](int64_t, int64_t c0, int64_t c1) {
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t oh = 0; oh < g.outH; ++oh)
        for (int64_t ow = 0; ow < g.outW; ++ow) {
          const float* dyp = dy + ((b * g.outH + oh) * g.outW + ow) * g.outC;
          for (int64_t kh = 0; kh < g.kH; ++kh) {
            const int64_t ih = oh * g.strideH - g.padTop + kh * g.dilH;
            if (ih < 0 || ih >= g.inH) continue;
            for (int64_t kw = 0; kw < g.kW; ++kw) {
              const int64_t iw = ow * g.strideW - g.padLeft + kw * g.dilW;
              if (iw < 0 || iw >= g.inW) continue;
              const float* xp = x + ((b * g.inH + ih) * g.inW + iw) * g.inC;
              float* dwp = dFilter + (kh * g.kW + kw) * g.outC;
              for (int64_t c = c0; c < c1; ++c)
                for (int64_t q = 0; q < multiplier; ++q) dwp[c * multiplier + q] += xp[c] * dyp[c * multiplier + q];
            }
          }
        }
  });
}

void biasActivation(float* out, int64_t rows, int64_t channels, const float* bias, Activation activation, float alphaValue) {
  parallelRanges(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, channels)), [&](int64_t begin, int64_t end) {
    const float alpha = alphaValue;  // a local: stores to out cannot alias it, so the loops vectorise
    for (int64_t r = begin; r < end; ++r) {
      float* row = out + r * channels;
      if (bias)
        for (int64_t c = 0; c < channels; ++c) row[c] += bias[c];
      switch (activation) {
        case Activation::Linear:
          break;
        case Activation::Relu:
          for (int64_t c = 0; c < channels; ++c) row[c] = row[c] < 0.0f ? 0.0f : row[c];
          break;
        case Activation::Relu6:
          for (int64_t c = 0; c < channels; ++c) row[c] = std::min(6.0f, row[c] < 0.0f ? 0.0f : row[c]);
          break;
        case Activation::LeakyRelu:
          for (int64_t c = 0; c < channels; ++c) row[c] = row[c] < 0.0f ? alpha * row[c] : row[c];
          break;
        case Activation::Elu:
          for (int64_t c = 0; c < channels; ++c) row[c] = row[c] >= 0.0f ? row[c] : std::expm1(row[c]);
          break;
        case Activation::Sigmoid:
          for (int64_t c = 0; c < channels; ++c) row[c] = 1.0f / (1.0f + std::exp(-row[c]));
          break;
      }
    }
  });
}

}  // namespace segkit
