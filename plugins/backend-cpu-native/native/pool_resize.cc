// Pooling and bilinear resize with tfjs's exact semantics (window clipping, first-max ties,
// AvgPoolGrad's division by the full window size, resize's index rounding). The loops run over the
// channels of NHWC pixels, vectorised for the active ISA (isa_dispatch.h: SEGKIT_ALWAYS_INLINE lambdas
// run through withIsa / runWithIsa).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "isa_dispatch.h"
#include "ops.h"
#include "thread_pool.h"

namespace segkit {
namespace {

/** The in-image part of one pooling window: rows [h0, h1) x cols [w0, w1). */
struct WindowBounds {
  int64_t h0, h1, w0, w1;
};

WindowBounds windowAt(const WindowGeometry& g, int64_t oh, int64_t ow) {
  const int64_t top = oh * g.strideH - g.padTop;
  const int64_t left = ow * g.strideW - g.padLeft;
  return {std::max<int64_t>(0, top), std::min(g.inH, top + g.kH), std::max<int64_t>(0, left),
          std::min(g.inW, left + g.kW)};
}

// Pool forward: parallel over output rows, vectorised over channels (reduce is SEGKIT_ALWAYS_INLINE).
template <typename Reduce>
void poolForward(const float* x, float* out, const WindowGeometry& g, Reduce reduce) {
  const auto rowsLoop = [&](int64_t rowBegin, int64_t rowEnd) SEGKIT_ALWAYS_INLINE {
    for (int64_t row = rowBegin; row < rowEnd; ++row) {
      const int64_t b = row / g.outH, oh = row % g.outH;
      for (int64_t ow = 0; ow < g.outW; ++ow)
        reduce(x + b * g.inH * g.inW * g.inC, windowAt(g, oh, ow), out + (row * g.outW + ow) * g.inC);
    }
  };
  parallelRanges(g.batch * g.outH, 1, withIsa(rowsLoop));
}

/** Source row/column pair and weight of the second one, for one output coordinate of a resize. */
struct Interpolation {
  int64_t low, high;
  float highWeight;
};

std::vector<Interpolation> interpolationTable(int64_t inSize, int64_t outSize, bool alignCorners,
                                              bool halfPixelCenters) {
  const bool corners = alignCorners && outSize > 1;
  const double scale = static_cast<double>(corners ? inSize - 1 : inSize) / static_cast<double>(corners ? outSize - 1 : outSize);
  std::vector<Interpolation> table(outSize);
  for (int64_t i = 0; i < outSize; ++i) {
    const double source = halfPixelCenters ? scale * (i + 0.5) - 0.5 : scale * i;
    const int64_t low = std::max<int64_t>(0, static_cast<int64_t>(std::floor(source)));
    const int64_t high = std::min<int64_t>(inSize - 1, static_cast<int64_t>(std::ceil(source)));
    table[i] = {low, high, static_cast<float>(source - low)};
  }
  return table;
}

}  // namespace

void maxPool(const float* x, float* out, const WindowGeometry& g) {
  poolForward(x, out, g, [&](const float* image, WindowBounds w, float* __restrict o) SEGKIT_ALWAYS_INLINE {
    const int64_t channels = g.inC, inW = g.inW;
    for (int64_t c = 0; c < channels; ++c) o[c] = -std::numeric_limits<float>::infinity();
    for (int64_t ih = w.h0; ih < w.h1; ++ih)
      for (int64_t iw = w.w0; iw < w.w1; ++iw) {
        const float* __restrict p = image + (ih * inW + iw) * channels;
        for (int64_t c = 0; c < channels; ++c) o[c] = p[c] > o[c] ? p[c] : o[c];
      }
  });
}

void avgPool(const float* x, float* out, const WindowGeometry& g) {
  poolForward(x, out, g, [&](const float* image, WindowBounds w, float* __restrict o) SEGKIT_ALWAYS_INLINE {
    const int64_t channels = g.inC, inW = g.inW;
    for (int64_t c = 0; c < channels; ++c) o[c] = 0.0f;
    for (int64_t ih = w.h0; ih < w.h1; ++ih)
      for (int64_t iw = w.w0; iw < w.w1; ++iw) {
        const float* __restrict p = image + (ih * inW + iw) * channels;
        for (int64_t c = 0; c < channels; ++c) o[c] += p[c];
      }
    // A window entirely in the padding has count 0 and yields NaN (0/0), as in tfjs.
    const int64_t count = std::max<int64_t>(0, w.h1 - w.h0) * std::max<int64_t>(0, w.w1 - w.w0);
    const float inverseCount = 1.0f / static_cast<float>(count);
    for (int64_t c = 0; c < channels; ++c) o[c] *= inverseCount;
  });
}

void maxPoolGrad(const float* dy, const float* x, float* dx, const WindowGeometry& g) {
  std::fill(dx, dx + g.batch * g.inH * g.inW * g.inC, 0.0f);
  // Per window, vectorised over a block of channels: the first strict maximum in scan order and its
  // position in the window (as tfjs picks it), then a second scan adds dy where the position matches.
  constexpr int64_t kBlock = 256;
  const auto sliceLoop = [&](int64_t b, int64_t c0, int64_t c1) SEGKIT_ALWAYS_INLINE {
    const int64_t channels = g.inC, inW = g.inW;
    const float* image = x + b * g.inH * g.inW * channels;
    float* dImage = dx + b * g.inH * g.inW * channels;
    alignas(64) float best[kBlock];
    alignas(64) int32_t bestAt[kBlock];
    for (int64_t oh = 0; oh < g.outH; ++oh)
      for (int64_t ow = 0; ow < g.outW; ++ow) {
        const WindowBounds w = windowAt(g, oh, ow);
        const float* dyPixel = dy + ((b * g.outH + oh) * g.outW + ow) * channels;
        for (int64_t block = c0; block < c1; block += kBlock) {
          const int64_t count = std::min(kBlock, c1 - block);
          for (int64_t c = 0; c < count; ++c) {
            best[c] = -std::numeric_limits<float>::infinity();
            bestAt[c] = -1;
          }
          int32_t position = 0;
          for (int64_t ih = w.h0; ih < w.h1; ++ih)
            for (int64_t iw = w.w0; iw < w.w1; ++iw, ++position) {
              const float* __restrict p = image + (ih * inW + iw) * channels + block;
              for (int64_t c = 0; c < count; ++c) {
                // Selects written as masks so that the loop if-converts on every ISA (SSE2 has no blend).
                const int32_t better = -static_cast<int32_t>(p[c] > best[c]);
                best[c] = p[c] > best[c] ? p[c] : best[c];
                bestAt[c] = (position & better) | (bestAt[c] & ~better);
              }
            }
          const float* __restrict gradient = dyPixel + block;
          position = 0;
          for (int64_t ih = w.h0; ih < w.h1; ++ih)
            for (int64_t iw = w.w0; iw < w.w1; ++iw, ++position) {
              float* __restrict d = dImage + (ih * inW + iw) * channels + block;
              // Adding +0 elsewhere changes nothing (dx sums never hold -0) and keeps the loop branch-free.
              for (int64_t c = 0; c < count; ++c) d[c] += valueOrZero(bestAt[c] == position, gradient[c]);
            }
        }
      }
  };
  forEachImageChannelSlice(g.batch, g.inC, withIsa(sliceLoop));
}

void avgPoolGrad(const float* dy, float* dx, const WindowGeometry& g) {
  // tfjs divides by the full window area even where the window is clipped by padding.
  const float scale = 1.0f / static_cast<float>(g.kH * g.kW);
  std::fill(dx, dx + g.batch * g.inH * g.inW * g.inC, 0.0f);
  const auto sliceLoop = [&](int64_t b, int64_t c0, int64_t c1) SEGKIT_ALWAYS_INLINE {
    const int64_t channels = g.inC, inW = g.inW;
    const float factor = scale;
    float* dImage = dx + b * g.inH * g.inW * channels;
    for (int64_t oh = 0; oh < g.outH; ++oh)
      for (int64_t ow = 0; ow < g.outW; ++ow) {
        const WindowBounds w = windowAt(g, oh, ow);
        const float* __restrict dyp = dy + ((b * g.outH + oh) * g.outW + ow) * channels;
        for (int64_t ih = w.h0; ih < w.h1; ++ih)
          for (int64_t iw = w.w0; iw < w.w1; ++iw) {
            float* __restrict p = dImage + (ih * inW + iw) * channels;
            for (int64_t c = c0; c < c1; ++c) p[c] += dyp[c] * factor;
          }
      }
  };
  forEachImageChannelSlice(g.batch, g.inC, withIsa(sliceLoop));
}

void resizeBilinear(const float* x, float* out, const WindowGeometry& g, bool alignCorners, bool halfPixelCenters) {
  const auto rows = interpolationTable(g.inH, g.outH, alignCorners, halfPixelCenters);
  const auto cols = interpolationTable(g.inW, g.outW, alignCorners, halfPixelCenters);
  const int64_t channels = g.inC;
  const auto rowsLoop = [&](int64_t rowBegin, int64_t rowEnd) SEGKIT_ALWAYS_INLINE {
    for (int64_t row = rowBegin; row < rowEnd; ++row) {
      const int64_t b = row / g.outH;
      const Interpolation& r = rows[row % g.outH];
      const float* topRow = x + (b * g.inH + r.low) * g.inW * channels;
      const float* bottomRow = x + (b * g.inH + r.high) * g.inW * channels;
      for (int64_t ow = 0; ow < g.outW; ++ow) {
        const Interpolation& col = cols[ow];
        const float* tl = topRow + col.low * channels;
        const float* tr = topRow + col.high * channels;
        const float* bl = bottomRow + col.low * channels;
        const float* br = bottomRow + col.high * channels;
        float* o = out + (row * g.outW + ow) * channels;
        for (int64_t c = 0; c < channels; ++c) {
          const float top = tl[c] + (tr[c] - tl[c]) * col.highWeight;
          const float bottom = bl[c] + (br[c] - bl[c]) * col.highWeight;
          o[c] = top + (bottom - top) * r.highWeight;
        }
      }
    }
  };
  parallelRanges(g.batch * g.outH, 1, withIsa(rowsLoop));
}

void resizeBilinearGrad(const float* dy, float* dx, const WindowGeometry& g, bool alignCorners, bool halfPixelCenters) {
  // The exact adjoint of resizeBilinear above (same index table), scattered per channel slice.
  const auto rows = interpolationTable(g.inH, g.outH, alignCorners, halfPixelCenters);
  const auto cols = interpolationTable(g.inW, g.outW, alignCorners, halfPixelCenters);
  const int64_t channels = g.inC;
  std::fill(dx, dx + g.batch * g.inH * g.inW * channels, 0.0f);
  const auto sliceLoop = [&](int64_t b, int64_t c0, int64_t c1) SEGKIT_ALWAYS_INLINE {
    for (int64_t oh = 0; oh < g.outH; ++oh) {
      const Interpolation& r = rows[oh];
      float* topRow = dx + (b * g.inH + r.low) * g.inW * channels;
      float* bottomRow = dx + (b * g.inH + r.high) * g.inW * channels;
      for (int64_t ow = 0; ow < g.outW; ++ow) {
        const Interpolation& col = cols[ow];
        const float* d = dy + ((b * g.outH + oh) * g.outW + ow) * channels;
        const float wTop = 1.0f - r.highWeight, wBottom = r.highWeight;
        const float wLeft = 1.0f - col.highWeight, wRight = col.highWeight;
        // One loop per corner, in this order: corners coincide where low == high (integer or clamped
        // source positions), and a fused loop over four maybe-equal pointers would not vectorise there.
        const struct {
          float* pixel;
          float rowWeight, colWeight;
        } corners[4] = {{topRow + col.low * channels, wTop, wLeft},
                        {topRow + col.high * channels, wTop, wRight},
                        {bottomRow + col.low * channels, wBottom, wLeft},
                        {bottomRow + col.high * channels, wBottom, wRight}};
        for (const auto& corner : corners) {
          float* p = corner.pixel;
          const float rowWeight = corner.rowWeight, colWeight = corner.colWeight;
          for (int64_t c = c0; c < c1; ++c) p[c] += d[c] * rowWeight * colWeight;
        }
      }
    }
  };
  forEachImageChannelSlice(g.batch, channels, withIsa(sliceLoop));
}

}  // namespace segkit
