#include "winograd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gemm.h"
#include "thread_pool.h"

namespace segkit {
namespace {

// Channels transformed together: the innermost loops run over them (contiguous in NHWC), so they vectorise.
constexpr int kChannelBlock = 16;

/** Transform matrices of F(m x m, 3 x 3) (Lavin & Gray), alpha = m + 2 points per tile side. */
template <int M>
struct Transforms;

template <>
struct Transforms<2> {
  static constexpr int kAlpha = 4;
  static constexpr float BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr float G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
  static constexpr float AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};

// Points 0, +-1, +-2, infinity: the usual choice, whose float32 error stays near 1e-6 relative for
// the unit-scale data of a network (measured against the cpu backend in the tests).
template <>
struct Transforms<4> {
  static constexpr int kAlpha = 6;
  static constexpr float BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                     {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float G[6][3] = {{1.0f / 4, 0, 0},
                                    {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                    {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                    {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                    {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                    {0, 0, 1}};
  static constexpr float AT[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
};

// out[i][j][c] = sum_k m[i][k] * in[k][j][c]; in is [K][N][block], out [R][N][block]. Fully unrolled
// over the constant matrix, so its zero entries cost nothing.
template <int R, int K, int N>
__attribute__((always_inline)) inline void multiplyLeft(const float (&m)[R][K], const float* in, float* out) {
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < N; ++j) {
      float acc[kChannelBlock] = {};
#pragma GCC unroll 8
      for (int k = 0; k < K; ++k) {
        const float coefficient = m[i][k];
        if (coefficient == 0.0f) continue;
        const float* row = in + (k * N + j) * kChannelBlock;
        for (int c = 0; c < kChannelBlock; ++c) acc[c] += coefficient * row[c];
      }
      std::memcpy(out + (i * N + j) * kChannelBlock, acc, sizeof(acc));
    }
}

// out[i][j][c] = sum_k in[i][k][c] * m[j][k]; in is [N][K][block], out [N][R][block].
template <int R, int K, int N>
__attribute__((always_inline)) inline void multiplyRightTransposed(const float (&m)[R][K], const float* in, float* out) {
#pragma GCC unroll 8
  for (int i = 0; i < N; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < R; ++j) {
      float acc[kChannelBlock] = {};
#pragma GCC unroll 8
      for (int k = 0; k < K; ++k) {
        const float coefficient = m[j][k];
        if (coefficient == 0.0f) continue;
        const float* row = in + (i * K + k) * kChannelBlock;
        for (int c = 0; c < kChannelBlock; ++c) acc[c] += coefficient * row[c];
      }
      std::memcpy(out + (i * R + j) * kChannelBlock, acc, sizeof(acc));
    }
}

/** One Winograd convolution: the tiling of the output and the three transforms. */
template <int M>
class WinogradConv {
  using T = Transforms<M>;
  static constexpr int kAlpha = T::kAlpha;
  static constexpr int kPositions = kAlpha * kAlpha;

 public:
  WinogradConv(const float* x, const float* filter, float* out, const WindowGeometry& g, bool flippedSwappedFilter)
      : x_(x), filter_(filter), out_(out), g_(g), swapped_(flippedSwappedFilter) {
    tilesH_ = (g.outH + M - 1) / M;
    tilesW_ = (g.outW + M - 1) / M;
  }

  void run() {
    const WindowGeometry& g = g_;
    // The filter's transform U[position][rows][cols], with rows x cols its stored [in, out] matrix
    // (for the swapped filter [g.outC, g.inC], read as its transpose by the GEMM).
    const int64_t rows = swapped_ ? g.outC : g.inC, cols = swapped_ ? g.inC : g.outC;
    std::unique_ptr<float[]> transformedFilter(new float[kPositions * rows * cols]);
    transformFilter(rows, cols, transformedFilter.get());
    transformed_ = transformedFilter.get();

    const int64_t tiles = g.batch * tilesH_ * tilesW_;
    const int64_t chunk = chunkTiles();
    const int64_t chunks = (tiles + chunk - 1) / chunk;
    const int64_t scratch = kPositions * chunk * (g.inC + g.outC);
    if (chunks >= 2 * numThreads()) {
      // Many chunks: one per task, each thread's transforms and GEMMs on its own cache-sized block.
      parallelFor(chunks, [&](int64_t i) {
        thread_local std::vector<float> buffer;
        if (static_cast<int64_t>(buffer.size()) < scratch) buffer.resize(scratch);
        processChunk(i * chunk, std::min(chunk, tiles - i * chunk), buffer.data());
      });
    } else {
      // Few chunks: the threads share each chunk (transforms over tiles, GEMMs over positions).
      std::unique_ptr<float[]> buffer(new float[scratch]);
      for (int64_t first = 0; first < tiles; first += chunk) processChunk(first, std::min(chunk, tiles - first), buffer.get());
    }
  }

 private:
  /**
   * Tiles per chunk: its transformed input and GEMM output ((alpha^2) x tiles x (inC + outC) floats)
   * about fill a core's L2 (512 KiB+), at least a few micro-kernel rows.
   */
  int64_t chunkTiles() const {
    static const int64_t budgetFloats = [] {
      const char* v = std::getenv("SEGKIT_WINOGRAD_CHUNK_KIB");
      return (v && *v ? std::atoll(v) : 768) * 1024 / 4;
    }();
    const int64_t perTile = kPositions * (g_.inC + g_.outC);
    const int64_t tiles = std::max<int64_t>(36, budgetFloats / perTile);
    return (tiles + 11) / 12 * 12;  // whole 12- and 6-row micro-kernel tiles
  }

  void transformFilter(int64_t rows, int64_t cols, float* u) const {
    const int64_t blocks = (cols + kChannelBlock - 1) / kChannelBlock;
    parallelRanges(rows * blocks, 16, [&](int64_t begin, int64_t end) {
      alignas(64) float taps[9 * kChannelBlock];
      alignas(64) float half[kAlpha * 3 * kChannelBlock];
      alignas(64) float full[kPositions * kChannelBlock];
      for (int64_t item = begin; item < end; ++item) {
        const int64_t r = item / blocks, c0 = (item % blocks) * kChannelBlock;
        const int64_t n = std::min<int64_t>(kChannelBlock, cols - c0);
        for (int tap = 0; tap < 9; ++tap) {
          const int sourceTap = swapped_ ? 8 - tap : tap;  // flipped: (2 - kh, 2 - kw)
          const float* src = filter_ + (sourceTap * rows + r) * cols + c0;
          float* dst = taps + tap * kChannelBlock;
          std::memcpy(dst, src, sizeof(float) * n);
          std::fill(dst + n, dst + kChannelBlock, 0.0f);
        }
        multiplyLeft<kAlpha, 3, 3>(T::G, taps, half);
        multiplyRightTransposed<kAlpha, 3, kAlpha>(T::G, half, full);
        for (int p = 0; p < kPositions; ++p)
          std::memcpy(u + (p * rows + r) * cols + c0, full + p * kChannelBlock, sizeof(float) * n);
      }
    });
  }

  // V[position][tile][inC] for tiles [first, first + count) of the output.
  void transformInput(int64_t first, int64_t count, int64_t begin, int64_t end, float* v) const {
    const WindowGeometry& g = g_;
    alignas(64) float patch[kPositions * kChannelBlock];
    alignas(64) float half[kPositions * kChannelBlock];
    alignas(64) float full[kPositions * kChannelBlock];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t tile = first + t;
      const int64_t tw = tile % tilesW_, th = (tile / tilesW_) % tilesH_, b = tile / (tilesW_ * tilesH_);
      const int64_t ih0 = th * M - g.padTop, iw0 = tw * M - g.padLeft;
      const float* image = x_ + b * g.inH * g.inW * g.inC;
      for (int64_t c0 = 0; c0 < g.inC; c0 += kChannelBlock) {
        const int64_t n = std::min<int64_t>(kChannelBlock, g.inC - c0);
        for (int i = 0; i < kAlpha; ++i)
          for (int j = 0; j < kAlpha; ++j) {
            float* dst = patch + (i * kAlpha + j) * kChannelBlock;
            const int64_t ih = ih0 + i, iw = iw0 + j;
            int64_t copied = 0;
            if (ih >= 0 && ih < g.inH && iw >= 0 && iw < g.inW) {
              std::memcpy(dst, image + (ih * g.inW + iw) * g.inC + c0, sizeof(float) * n);
              copied = n;
            }
            std::fill(dst + copied, dst + kChannelBlock, 0.0f);
          }
        multiplyLeft<kAlpha, kAlpha, kAlpha>(T::BT, patch, half);
        multiplyRightTransposed<kAlpha, kAlpha, kAlpha>(T::BT, half, full);
        for (int p = 0; p < kPositions; ++p)
          std::memcpy(v + (p * count + t) * g.inC + c0, full + p * kChannelBlock, sizeof(float) * n);
      }
    }
  }

  // out's pixels of tiles [first, first + count) from the GEMM results m[position][tile][outC].
  void transformOutput(int64_t first, int64_t count, int64_t begin, int64_t end, const float* m) const {
    const WindowGeometry& g = g_;
    alignas(64) float products[kPositions * kChannelBlock];
    alignas(64) float half[M * kAlpha * kChannelBlock];
    alignas(64) float pixels[M * M * kChannelBlock];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t tile = first + t;
      const int64_t tw = tile % tilesW_, th = (tile / tilesW_) % tilesH_, b = tile / (tilesW_ * tilesH_);
      for (int64_t c0 = 0; c0 < g.outC; c0 += kChannelBlock) {
        const int64_t n = std::min<int64_t>(kChannelBlock, g.outC - c0);
        for (int p = 0; p < kPositions; ++p) {
          float* dst = products + p * kChannelBlock;
          std::memcpy(dst, m + (p * count + t) * g.outC + c0, sizeof(float) * n);
          std::fill(dst + n, dst + kChannelBlock, 0.0f);
        }
        multiplyLeft<M, kAlpha, kAlpha>(T::AT, products, half);
        multiplyRightTransposed<M, kAlpha, M>(T::AT, half, pixels);
        for (int i = 0; i < M; ++i) {
          const int64_t oh = th * M + i;
          if (oh >= g.outH) break;
          for (int j = 0; j < M; ++j) {
            const int64_t ow = tw * M + j;
            if (ow >= g.outW) break;
            std::memcpy(out_ + ((b * g.outH + oh) * g.outW + ow) * g.outC + c0, pixels + (i * M + j) * kChannelBlock,
                        sizeof(float) * n);
          }
        }
      }
    }
  }

  void processChunk(int64_t first, int64_t count, float* scratch) const {
    const WindowGeometry& g = g_;
    float* v = scratch;                                 // [positions][count][inC]
    float* products = scratch + kPositions * count * g.inC;  // [positions][count][outC]
    parallelRanges(count, 4, [&](int64_t begin, int64_t end) { transformInput(first, count, begin, end, v); });
    parallelFor(kPositions, [&](int64_t p) {
      const float* u = transformed_ + p * g.inC * g.outC;
      // U[p] is [inC, outC], or for the swapped filter [outC, inC] read transposed.
      const StridedView filterMatrix = swapped_ ? StridedView(u, 1, g.inC) : StridedView(u, g.outC, 1);
      gemmOnThisThread(StridedView(v + p * count * g.inC, g.inC, 1), filterMatrix,
                       OutputMatrix{products + p * count * g.outC, g.outC, 1}, count, g.outC, g.inC, false);
    });
    parallelRanges(count, 4, [&](int64_t begin, int64_t end) { transformOutput(first, count, begin, end, products); });
  }

  const float* x_;
  const float* filter_;
  float* out_;
  WindowGeometry g_;
  bool swapped_;
  int64_t tilesH_ = 0, tilesW_ = 0;
  const float* transformed_ = nullptr;
};

ConvAlgorithm& forcedAlgorithm() {
  static ConvAlgorithm algorithm = [] {
    const char* requested = std::getenv("SEGKIT_NATIVE_CONV");
    if (requested && std::strcmp(requested, "im2col") == 0) return ConvAlgorithm::Im2col;
    if (requested && std::strcmp(requested, "winograd2") == 0) return ConvAlgorithm::WinogradF2;
    if (requested && std::strcmp(requested, "winograd4") == 0) return ConvAlgorithm::WinogradF4;
    return ConvAlgorithm::Auto;
  }();
  return algorithm;
}

constexpr const char* kAlgorithmNames[] = {"auto", "im2col", "winograd2", "winograd4"};

}  // namespace

bool winogradApplies(const WindowGeometry& g) {
  return g.kH == 3 && g.kW == 3 && g.strideH == 1 && g.strideW == 1 && g.dilH == 1 && g.dilW == 1;
}

ConvAlgorithm chooseConvAlgorithm(const WindowGeometry& g) {
  if (!winogradApplies(g)) return ConvAlgorithm::Im2col;
  if (forcedAlgorithm() != ConvAlgorithm::Auto) return forcedAlgorithm();
  // TODO measured heuristic
  const int64_t tiles4 = g.batch * ((g.outH + 3) / 4) * ((g.outW + 3) / 4);
  if (g.inC >= 32 && g.outC >= 32 && tiles4 >= 64) return ConvAlgorithm::WinogradF4;
  return ConvAlgorithm::Im2col;
}

void winogradConv2d(const float* x, const float* filter, float* out, const WindowGeometry& g, int tile,
                    bool flippedSwappedFilter) {
  if (tile == 2)
    WinogradConv<2>(x, filter, out, g, flippedSwappedFilter).run();
  else
    WinogradConv<4>(x, filter, out, g, flippedSwappedFilter).run();
}

const char* convAlgorithmName() { return kAlgorithmNames[static_cast<int>(forcedAlgorithm())]; }

bool selectConvAlgorithm(const char* name) {
  for (int i = 0; i < 4; ++i)
    if (std::strcmp(name, kAlgorithmNames[i]) == 0) {
      forcedAlgorithm() = static_cast<ConvAlgorithm>(i);
      return true;
    }
  return false;
}

}  // namespace segkit
