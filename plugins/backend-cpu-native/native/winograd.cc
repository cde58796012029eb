#include "winograd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "gemm.h"
#include "isa_dispatch.h"
#include "thread_pool.h"
#include "workspace.h"

namespace segkit {
namespace {

// Channels transformed together: the innermost loops run over them (contiguous in NHWC), so they vectorise.
constexpr int kChannelBlock = 16;

/**
 * Floats of the workspace cache's largest block: the limit of a transformed filter (or block of it) and
 * of the filter gradient's transformed dY, so that the next call reuses their pages. A fresh 38 MB
 * filter (b2 32x32 1024->256 grad-input) was 9K page faults a call, 4x the arithmetic's time.
 */
constexpr int64_t kCachedBlockFloats = Workspace::kMaxCachedBytes / sizeof(float);

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

// Points 0, +-1, +-2, infinity: the usual choice. Its larger coefficients cost float32 accuracy: max
// error within 3e-5 of the output's scale up to 4096 input channels (F(2,3): ~1e-6), measured against
// im2col and the cpu backend.
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

/** A constant matrix's transpose, computed at compile time. */
template <int R, int C>
struct TransposedMatrix {
  float m[C][R] = {};
  constexpr explicit TransposedMatrix(const float (&source)[R][C]) {
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < C; ++j) m[j][i] = source[i][j];
  }
};

// The filter gradient runs the forward algorithm backwards: with Y = A^T [(G W G^T) . (B^T D B)] A,
// dL/dW = G^T [(B^T D B) . (A dY A^T)] G — the input transform, then A and G^T (these transposes).
template <int M>
constexpr TransposedMatrix<M, Transforms<M>::kAlpha> kOutputTransformTransposed{Transforms<M>::AT};
template <int M>
constexpr TransposedMatrix<Transforms<M>::kAlpha, 3> kFilterTransformTransposed{Transforms<M>::G};

/** One ISA's tile transforms (winograd_transforms.inl), on [points][kChannelBlock] blocks. */
struct TileTransforms {
  void (*input)(const float* patch, float* out);    // [alpha^2] -> [alpha^2]
  void (*filter)(const float* taps, float* out);    // [9] -> [alpha^2]
  void (*output)(const float* products, float* out);  // [alpha^2] -> [M^2]
  void (*outputGradient)(const float* dy, float* out);  // [M^2] -> [alpha^2]
  void (*filterGradient)(const float* sums, float* out);  // [alpha^2] -> [9]
};

namespace portable {
#include "winograd_transforms.inl"
}  // namespace portable

#if defined(__x86_64__) || defined(__i386__)
#define SEGKIT_X86 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace avx2 {
#include "winograd_transforms.inl"
template TileTransforms tileTransforms<2>();
template TileTransforms tileTransforms<4>();
}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma"))), apply_to = function)
#else
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma")
#endif
namespace avx512 {
#include "winograd_transforms.inl"
template TileTransforms tileTransforms<2>();
template TileTransforms tileTransforms<4>();
}  // namespace avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

/** The transforms for the addon's ISA decision (activeIsa), so SEGKIT_NATIVE_ISA switches them with the GEMM. */
template <int M>
TileTransforms transformsForActiveIsa() {
#ifdef SEGKIT_X86
  switch (activeIsa()) {
    case Isa::Avx512:
      return avx512::tileTransforms<M>();
    case Isa::Avx2Fma:
      return avx2::tileTransforms<M>();
    case Isa::Portable:
      break;
  }
#endif
  return portable::tileTransforms<M>();
}

/**
 * A GEMM operand stored as the GEMM packs it, read in place. A (`Blocked::Rows`): panels of `block`
 * rows, column by column — element (r, c) at ((r / block) * cols + c) * block + r % block. B
 * (`Blocked::Cols`): slivers of `block` columns, row by row — the same with r and c exchanged. Packing a
 * whole panel or sliver is then one memcpy; rows (columns) past the last are stored as zeros up to a
 * whole block. `extent` is the other dimension's length (A's cols, B's rows).
 */
class PackedBlocksView final : public MatrixView {
 public:
  enum class Blocked { Rows, Cols };
  PackedBlocksView(Blocked blocked, const float* data, int64_t extent, int64_t block)
      : blocked_(blocked), data_(data), extent_(extent), block_(block) {}

  void copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                int64_t dstColStride) const override {
    // In block coordinates: `major` runs along the blocked dimension, `minor` along the other.
    const bool byRows = blocked_ == Blocked::Rows;
    const int64_t major0 = byRows ? row0 : col0, majors = byRows ? rows : cols;
    const int64_t minor0 = byRows ? col0 : row0, minors = byRows ? cols : rows;
    const int64_t dstMajorStride = byRows ? dstRowStride : dstColStride;
    const int64_t dstMinorStride = byRows ? dstColStride : dstRowStride;
    if (dstMajorStride == 1 && dstMinorStride == block_ && major0 % block_ == 0 && majors <= block_) {
      std::memcpy(dst, at(major0, minor0), sizeof(float) * minors * block_);
      return;
    }
    for (int64_t major = 0; major < majors; ++major)
      for (int64_t minor = 0; minor < minors; ++minor)
        dst[major * dstMajorStride + minor * dstMinorStride] = *at(major0 + major, minor0 + minor);
  }

  const float* packedPanel(int64_t row0, int64_t col0, int64_t mr) const override {
    return blocked_ == Blocked::Rows && mr == block_ && row0 % block_ == 0 ? at(row0, col0) : nullptr;
  }

  const float* packedSliver(int64_t row0, int64_t col0, int64_t nr) const override {
    return blocked_ == Blocked::Cols && nr == block_ && col0 % block_ == 0 ? at(col0, row0) : nullptr;
  }

 private:
  const float* at(int64_t major, int64_t minor) const {
    return data_ + ((major / block_) * extent_ + minor) * block_ + major % block_;
  }

  Blocked blocked_;
  const float* data_;
  int64_t extent_, block_;
};

/** dst[0, kChannelBlock) = src[0, n), zero past n; a fixed-size copy in the usual full-block case. */
inline void loadBlock(float* dst, const float* src, int64_t n) {
  if (n == kChannelBlock) {
    std::memcpy(dst, src, sizeof(float) * kChannelBlock);
    return;
  }
  std::memcpy(dst, src, sizeof(float) * n);
  std::fill(dst + n, dst + kChannelBlock, 0.0f);
}

inline void storeBlock(float* dst, const float* src, int64_t n) {
  if (n == kChannelBlock)
    std::memcpy(dst, src, sizeof(float) * kChannelBlock);
  else
    std::memcpy(dst, src, sizeof(float) * n);
}

/**
 * dst[0, n) = src[0, n) for n <= kChannelBlock, in fixed-size pieces the compiler inlines: the
 * transforms' scatter into packed panels copies runs of 4-16 floats, and a memcpy call per run was a
 * quarter of a narrow layer's Winograd filter gradient.
 */
inline void copyShortRun(float* dst, const float* src, int64_t n) {
  if (n == kChannelBlock) {
    std::memcpy(dst, src, sizeof(float) * kChannelBlock);
    return;
  }
  int64_t i = 0;
  if (n - i >= 8) std::memcpy(dst + i, src + i, sizeof(float) * 8), i += 8;
  if (n - i >= 4) std::memcpy(dst + i, src + i, sizeof(float) * 4), i += 4;
  for (; i < n; ++i) dst[i] = src[i];
}

/**
 * The size x size window from (row0, col0) of an NHWC image [height, width, channels], channels
 * [c0, c0 + n), as [size][size][kChannelBlock]; pixels outside the image (padding, or past a partial
 * edge tile) and channels past n read as zero.
 */
inline void gatherWindow(const float* image, int64_t height, int64_t width, int64_t channels, int64_t row0,
                         int64_t col0, int size, int64_t c0, int64_t n, float* dst) {
  for (int i = 0; i < size; ++i)
    for (int j = 0; j < size; ++j) {
      float* block = dst + (i * size + j) * kChannelBlock;
      const int64_t row = row0 + i, col = col0 + j;
      if (row >= 0 && row < height && col >= 0 && col < width)
        loadBlock(block, image + (row * width + col) * channels + c0, n);
      else
        std::fill(block, block + kChannelBlock, 0.0f);
    }
}

/** Most rows of any micro-kernel's panel (gemm.cc's tiles: 12, 8 or 6 rows): WinogradConv's panel buffer. */
constexpr int64_t kMaxPanelTiles = 12;

/** One Winograd convolution: the tiling of the output, the three transforms and the GEMMs between. */
template <int M>
class WinogradConv {
  static constexpr int kAlpha = Transforms<M>::kAlpha;
  static constexpr int kPositions = kAlpha * kAlpha;

 public:
  WinogradConv(const float* x, const float* filter, float* out, const WindowGeometry& g, bool flippedSwappedFilter)
      : x_(x),
        filter_(filter),
        out_(out),
        g_(g),
        swapped_(flippedSwappedFilter),
        transforms_(transformsForActiveIsa<M>()),
        mr_(microKernelRows()),
        nr_(microKernelCols()),
        tilesH_((g.outH + M - 1) / M),
        tilesW_((g.outW + M - 1) / M) {}

  void run() {
    const WindowGeometry& g = g_;
    const int64_t tiles = g.batch * tilesH_ * tilesW_;
    if (g.inC > kMaxInputChannelBlock) {
      runInChannelBlocks(tiles);
      return;
    }
    if (kPositions * g.inC * g.outC > kTransformedFilterFloats) {
      runInOutputChannelBlocks(tiles);
      return;
    }
    // U[position] as the GEMM's B operand [inC x outC] in packed slivers, zero past outC.
    Workspace transformedFilter(kPositions * slivers() * nr_ * g.inC);
    transformFilter(transformedFilter.get());
    transformed_ = transformedFilter.get();

    const int64_t chunk = chunkTiles();
    const int64_t chunks = (tiles + chunk - 1) / chunk;
    const int64_t scratch = kPositions * chunk * (g.inC + g.outC);
    if (chunks >= 2 * numThreads()) {
      // Many chunks: one per task, each thread's transforms and GEMMs on its own cache-sized block.
      parallelFor(chunks, [&](int64_t i) {
        Workspace buffer(scratch);
        processChunk(i * chunk, std::min(chunk, tiles - i * chunk), buffer.get());
      });
    } else {
      // Few chunks: the threads share each chunk (transforms over tiles, GEMMs over positions).
      Workspace buffer(scratch);
      for (int64_t first = 0; first < tiles; first += chunk) processChunk(first, std::min(chunk, tiles - first), buffer.get());
    }
  }

  /**
   * Largest transformed filter made whole; past it, the output channels go in blocks (the grad-input
   * of PSPNet's 512 -> 4096 bottleneck, 302 MB whole), or with over 512 input channels, the input
   * channels do.
   */
  static constexpr int64_t kTransformedFilterFloats = kCachedBlockFloats;

  /**
   * Input channels per block where the transformed filter would not fit otherwise (PSPNet's 4096 -> 512
   * bottleneck: 302 MB whole): the whole output in one pass per block, the GEMMs accumulating over the
   * blocks. At most kMaxInputChannelBlock channels, a multiple of 32, and a block's filter within
   * kTransformedFilterFloats.
   */
  static constexpr int64_t kMaxInputChannelBlock = 512;
  static int64_t inputChannelBlock(const WindowGeometry& g) {
    const int64_t paddedOutC = (g.outC + microKernelCols() - 1) / microKernelCols() * microKernelCols();
    return std::clamp<int64_t>(kTransformedFilterFloats / (kPositions * paddedOutC) / 32 * 32, 32, kMaxInputChannelBlock);
  }

 private:
  int64_t slivers() const { return (nb_ + nr_ - 1) / nr_; }

  /** All tiles' transformed input made once, then per block of output channels: its filter, GEMMs and output. */
  void runInOutputChannelBlocks(int64_t tiles) {
    const WindowGeometry& g = g_;
    const int64_t paddedTiles = (tiles + mr_ - 1) / mr_ * mr_;
    // A multiple of 32: whole slivers of every micro-kernel (8, 16, 32 columns) and whole transform blocks.
    const int64_t block = std::max<int64_t>(32, kTransformedFilterFloats / (kPositions * g.inC) / 32 * 32);
    Workspace transformedFilter(kPositions * block * g.inC);
    Workspace v(kPositions * paddedTiles * g.inC);
    Workspace products(kPositions * tiles * block);
    transformed_ = transformedFilter.get();
    transformInputTiles(0, tiles, v.get());
    for (n0_ = 0; n0_ < g.outC; n0_ += block) {
      nb_ = std::min(block, g.outC - n0_);
      transformFilter(transformedFilter.get());
      multiply(tiles, v.get(), products.get(), false);
      parallelRanges(tiles, 4, [&](int64_t begin, int64_t end) { transformOutput(0, tiles, begin, end, products.get()); });
    }
  }

  void runInChannelBlocks(int64_t tiles) {
    const WindowGeometry& g = g_;
    const int64_t paddedTiles = (tiles + mr_ - 1) / mr_ * mr_;
    const int64_t block = inputChannelBlock(g);
    Workspace transformedFilter(kPositions * slivers() * nr_ * block);
    Workspace v(kPositions * paddedTiles * block);
    Workspace products(kPositions * tiles * g.outC);
    transformed_ = transformedFilter.get();
    for (k0_ = 0; k0_ < g.inC; k0_ += block) {
      kb_ = std::min(block, g.inC - k0_);
      transformFilter(transformedFilter.get());
      transformAndMultiply(0, tiles, v.get(), products.get(), k0_ > 0);
    }
    parallelRanges(tiles, 4, [&](int64_t begin, int64_t end) { transformOutput(0, tiles, begin, end, products.get()); });
  }

  /**
   * Tiles per chunk, a multiple of every micro-kernel's row count: the chunk's transformed input and
   * GEMM output (alpha^2 x tiles x (inC + outC) floats) stay within a core's L2 — unless all the tiles'
   * are smaller than the transformed filter, which every chunk's GEMMs read whole: then one chunk
   * (2-core AVX-512 EPYC: b4 16x16 256->256 forward 3.6 -> 3.2 ms, grad-input 3.4 -> 2.9; 128->256
   * 1.9 -> 1.6; b2 16x16 256->256 2.7 -> 2.2).
   */
  int64_t chunkTiles() const {
    const int64_t allTiles = g_.batch * tilesH_ * tilesW_;
    if (allTiles * (g_.inC + g_.outC) <= g_.inC * g_.outC) return (allTiles + 11) / 12 * 12;
    // 256 KiB to 2 MiB measured alike on 64-256 channels (8 MiB: up to 1.4x slower).
    constexpr int64_t budgetFloats = 512 * 1024 / sizeof(float);
    const int64_t perTile = kPositions * (g_.inC + g_.outC);
    const int64_t tiles = std::max<int64_t>(24, budgetFloats / perTile);
    return (tiles + 11) / 12 * 12;
  }

  /** Offset of GEMM B element (k, n) of one position's packed U (K = inC, N = outC). */
  int64_t packedFilterIndex(int64_t k, int64_t n) const { return ((n / nr_) * kb_ + k) * nr_ + n % nr_; }

  void transformFilter(float* u) const {
    // Blocks of kChannelBlock GEMM columns n (output channels) at one GEMM row k (input channel). The
    // stored filter is [3, 3, inC, outC], or for the swapped filter [3, 3, outC, inC] (read flipped):
    // element (k, n) of a tap at k * outC + n, or n * inC + k.
    // GEMM rows k are input channels k0_ + k of the block, columns n output channels n0_ + n.
    const int64_t K = kb_, N = nb_;
    const int64_t strideK = swapped_ ? 1 : g_.outC, strideN = swapped_ ? g_.inC : 1;
    const int64_t positionSize = slivers() * nr_ * K;
    const int64_t blocks = (N + kChannelBlock - 1) / kChannelBlock;
    if (N % nr_ != 0) {
      // Columns past N in the last sliver: zero, so the padded micro-kernel columns compute zeros.
      for (int p = 0; p < kPositions; ++p)
        for (int64_t k = 0; k < K; ++k) {
          float* row = u + p * positionSize + packedFilterIndex(k, N - N % nr_);
          std::fill(row + N % nr_, row + nr_, 0.0f);
        }
    }
    // k runs fastest: with the swapped filter, neighbouring k share the cache lines just read.
    parallelRanges(blocks * K, 16, [&](int64_t begin, int64_t end) {
      alignas(64) float taps[9 * kChannelBlock];
      alignas(64) float full[kPositions * kChannelBlock];
      for (int64_t item = begin; item < end; ++item) {
        const int64_t k = item % K, n0 = (item / K) * kChannelBlock;
        const int64_t n = std::min<int64_t>(kChannelBlock, N - n0);
        for (int tap = 0; tap < 9; ++tap) {
          const int sourceTap = swapped_ ? 8 - tap : tap;  // flipped: (2 - kh, 2 - kw)
          const float* src = filter_ + sourceTap * g_.inC * g_.outC + (k0_ + k) * strideK + (n0_ + n0) * strideN;
          float* dst = taps + tap * kChannelBlock;
          if (strideN == 1) {
            loadBlock(dst, src, n);
          } else {
            for (int64_t j = 0; j < n; ++j) dst[j] = src[j * strideN];
            std::fill(dst + n, dst + kChannelBlock, 0.0f);
          }
        }
        transforms_.filter(taps, full);
        // Runs of n within one sliver are contiguous in the packed layout.
        for (int64_t j = 0; j < n;) {
          const int64_t run = std::min(n - j, nr_ - (n0 + j) % nr_);
          float* dst = u + packedFilterIndex(k, n0 + j);
          for (int p = 0; p < kPositions; ++p) {
            // A whole block (the usual case, slivers of 16 or 32 columns): a fixed-size copy, inlined.
            if (run == kChannelBlock)
              std::memcpy(dst + p * positionSize, full + p * kChannelBlock, sizeof(float) * kChannelBlock);
            else
              std::memcpy(dst + p * positionSize, full + p * kChannelBlock + j, sizeof(float) * run);
          }
          j += run;
        }
      }
    });
  }

  // Tiles [begin, end) of the chunk's V[position] = the GEMM's A operand [count x inC] in packed panels;
  // begin is the first tile of a panel.
  void transformInput(int64_t first, int64_t count, int64_t begin, int64_t end, float* v) const {
    const WindowGeometry& g = g_;
    const int64_t positionSize = (count + mr_ - 1) / mr_ * mr_ * kb_;
    alignas(64) float patch[kPositions * kChannelBlock];
    // One panel's tiles transformed, [tile][position][channel], then written to the panel transposed
    // (channel by channel, mr tiles each) in 4 x 4 blocks: a scattered store per float, mr floats
    // apart, was half of a narrow layer's Winograd forward (b2 128x128 32->32).
    alignas(64) float full[kMaxPanelTiles * kPositions * kChannelBlock];
    for (int64_t panelBegin = begin; panelBegin < end; panelBegin += mr_) {
      const int64_t tilesInPanel = std::min(mr_, end - panelBegin);
      float* panel = v + (panelBegin / mr_) * kb_ * mr_;
      for (int64_t c0 = k0_; c0 < k0_ + kb_; c0 += kChannelBlock) {
        const int64_t n = std::min<int64_t>(kChannelBlock, k0_ + kb_ - c0);
        for (int64_t i = 0; i < tilesInPanel; ++i) {
          const int64_t tile = first + panelBegin + i;
          const int64_t tw = tile % tilesW_, th = (tile / tilesW_) % tilesH_, b = tile / (tilesW_ * tilesH_);
          gatherWindow(x_ + b * g.inH * g.inW * g.inC, g.inH, g.inW, g.inC, th * M - g.padTop, tw * M - g.padLeft, kAlpha,
                       c0, n, patch);
          transforms_.input(patch, full + i * kPositions * kChannelBlock);
        }
        for (int p = 0; p < kPositions; ++p)
          copyTransposed(full + p * kChannelBlock, kPositions * kChannelBlock, panel + p * positionSize + (c0 - k0_) * mr_, mr_,
                         n, tilesInPanel);
      }
    }
  }

  // out's pixels of tiles [begin, end) of the chunk from the GEMM results m[position][count][outC].
  void transformOutput(int64_t first, int64_t count, int64_t begin, int64_t end, const float* m) const {
    const WindowGeometry& g = g_;
    alignas(64) float products[kPositions * kChannelBlock];
    alignas(64) float pixels[M * M * kChannelBlock];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t tile = first + t;
      const int64_t tw = tile % tilesW_, th = (tile / tilesW_) % tilesH_, b = tile / (tilesW_ * tilesH_);
      for (int64_t c0 = 0; c0 < nb_; c0 += kChannelBlock) {
        const int64_t n = std::min<int64_t>(kChannelBlock, nb_ - c0);
        for (int p = 0; p < kPositions; ++p) {
          loadBlock(products + p * kChannelBlock, m + (p * count + t) * nb_ + c0, n);
        }
        transforms_.output(products, pixels);
        for (int i = 0; i < M; ++i) {
          const int64_t oh = th * M + i;
          if (oh >= g.outH) break;
          for (int j = 0; j < M; ++j) {
            const int64_t ow = tw * M + j;
            if (ow >= g.outW) break;
            storeBlock(out_ + ((b * g.outH + oh) * g.outW + ow) * g.outC + n0_ + c0, pixels + (i * M + j) * kChannelBlock, n);
          }
        }
      }
    }
  }

  void processChunk(int64_t first, int64_t count, float* scratch) const {
    const int64_t paddedCount = (count + mr_ - 1) / mr_ * mr_;
    float* products = scratch + kPositions * paddedCount * kb_;  // after V: [positions][count][outC]
    transformAndMultiply(first, count, scratch, products, false);
    parallelRanges(count, 4, [&](int64_t begin, int64_t end) { transformOutput(first, count, begin, end, products); });
  }

  // products[position] (+)= V[position] x U[position] for tiles [first, first + count) and the input
  // channel block [k0_, k0_ + kb_); v holds [positions][count rounded up to mr x kb_], packed.
  void transformAndMultiply(int64_t first, int64_t count, float* v, float* products, bool accumulate) const {
    transformInputTiles(first, count, v);
    multiply(count, v, products, accumulate);
  }

  void transformInputTiles(int64_t first, int64_t count, float* v) const {
    const int64_t paddedCount = (count + mr_ - 1) / mr_ * mr_;
    if (paddedCount > count) {
      // Rows past the last tile of the last panel: zero, so the padded micro-kernel rows compute zeros.
      const int64_t lastPanel = (count / mr_) * kb_ * mr_;
      for (int p = 0; p < kPositions; ++p)
        for (int64_t c = 0; c < kb_; ++c)
          std::fill(v + p * paddedCount * kb_ + lastPanel + c * mr_ + count % mr_,
                    v + p * paddedCount * kb_ + lastPanel + (c + 1) * mr_, 0.0f);
    }
    // Whole panels per task: the tiles of one panel interleave at a stride of mr floats, so threads
    // splitting a panel would write the same cache lines (b4 8x8 256->128: 2.4x slower than one thread).
    parallelRanges(paddedCount / mr_, 1, [&](int64_t begin, int64_t end) {
      transformInput(first, count, begin * mr_, std::min(count, end * mr_), v);
    });
  }

  // products[position] [count x nb_] (+)= V[position] x U[position].
  void multiply(int64_t count, const float* v, float* products, bool accumulate) const {
    const int64_t paddedCount = (count + mr_ - 1) / mr_ * mr_;
    parallelFor(kPositions, [&](int64_t p) {
      gemmOnThisThread(PackedBlocksView(PackedBlocksView::Blocked::Rows, v + p * paddedCount * kb_, kb_, mr_),
                       PackedBlocksView(PackedBlocksView::Blocked::Cols, transformed_ + p * slivers() * nr_ * kb_, kb_, nr_),
                       OutputMatrix{products + p * count * nb_, nb_, 1}, count, nb_, kb_, accumulate);
    });
  }

  const float* x_;
  const float* filter_;
  float* out_;
  WindowGeometry g_;
  bool swapped_;
  TileTransforms transforms_;
  int64_t mr_, nr_;
  int64_t tilesH_, tilesW_;
  const float* transformed_ = nullptr;
  int64_t k0_ = 0, kb_ = g_.inC;   // the input channel block being multiplied (all of them but in runInChannelBlocks)
  int64_t n0_ = 0, nb_ = g_.outC;  // the output channel block (all of them but in runInOutputChannelBlocks)
};


/**
 * The filter gradient of a Winograd-applicable convolution, F(M x M, 3 x 3) run backwards:
 * dW = G^T [sum over tiles of (B^T X B) . (A dY A^T)] G per (input, output) channel pair. The sum is
 * one GEMM per tile position, [inC x tiles] x [tiles x outC], 4x (F(2,3): 2.25x) fewer multiply-adds
 * than im2col's [outC x pixels] x [pixels x 9 inC]. Where a copy of the sums per thread is small
 * (narrow layers), each thread sums its own chunks of tiles (runInTileChunks); otherwise dY's transform
 * is made once, and X's and the GEMM results go one block of input channels at a time, so the buffers
 * stay a few MB for any inC.
 */
template <int M>
class WinogradFilterGradient {
  static constexpr int kAlpha = Transforms<M>::kAlpha;
  static constexpr int kPositions = kAlpha * kAlpha;

 public:
  WinogradFilterGradient(const float* x, const float* dy, float* dFilter, const WindowGeometry& g)
      : x_(x),
        dy_(dy),
        dFilter_(dFilter),
        g_(g),
        transforms_(transformsForActiveIsa<M>()),
        mr_(microKernelRows()),
        nr_(microKernelCols()),
        tilesH_((g.outH + M - 1) / M),
        tilesW_((g.outW + M - 1) / M),
        tiles_(g.batch * tilesH_ * tilesW_),
        sliverFloats_((g.outC + nr_ - 1) / nr_ * nr_ * tiles_),
        channelBlock_(inputChannelBlock(g, tiles_)),
        panelFloats_((channelBlock_ + mr_ - 1) / mr_ * mr_ * tiles_) {}

  /** Floats of the transformed dY (kept whole): the caller's size limit. */
  static int64_t transformedOutputFloats(const WindowGeometry& g) {
    const int64_t tiles = g.batch * ((g.outH + M - 1) / M) * ((g.outW + M - 1) / M);
    return kPositions * tiles * (g.outC + 32);
  }

  /**
   * Whether runInTileChunks applies: one private copy of the sums per thread, all within the
   * workspace cache's largest block (reused, not faulted in, each call).
   */
  static bool sumsPerThreadFit(const WindowGeometry& g) {
    return numThreads() * kPositions * g.inC * g.outC <= kCachedBlockFloats;
  }

  void run() {
    if (sumsPerThreadFit(g_)) {
      runInTileChunks();
      return;
    }
    const WindowGeometry& g = g_;
    Workspace transformedDy(kPositions * sliverFloats_);
    Workspace transformedX(kPositions * panelFloats_);
    Workspace sums(kPositions * channelBlock_ * g.outC);
    transformOutputGradient(0, tiles_, sliverFloats_, transformedDy.get());
    for (int64_t c0 = 0; c0 < g.inC; c0 += channelBlock_) {
      const int64_t channels = std::min(channelBlock_, g.inC - c0);
      transformInput(0, tiles_, c0, channels, panelFloats_, transformedX.get());
      float* s = sums.get();
      parallelFor(kPositions, [&](int64_t p) {
        gemmOnThisThread(PackedBlocksView(PackedBlocksView::Blocked::Rows, transformedX.get() + p * panelFloats_, tiles_, mr_),
                         PackedBlocksView(PackedBlocksView::Blocked::Cols, transformedDy.get() + p * sliverFloats_, tiles_, nr_),
                         OutputMatrix{s + p * channels * g.outC, g.outC, 1}, channels, g.outC, tiles_, false);
      });
      transformSums(c0, channels, s);
    }
  }

 private:
  /**
   * For a narrow layer over many tiles, whose sums (36 per filter weight) are small: each thread
   * takes its own range of tiles and, chunk by chunk, transforms them into a cache-sized block and
   * multiplies that into a private copy of the sums; the copies are added at the end. The whole-map
   * run above wrote every tile's transforms out (28 MB for b4 64x64 128->64) and read them back.
   */
  void runInTileChunks() {
    const WindowGeometry& g = g_;
    const int64_t chunk = chunkTiles();
    const int64_t chunks = (tiles_ + chunk - 1) / chunk;
    const int64_t parts = std::min<int64_t>(chunks, numThreads());
    const int64_t sumFloats = kPositions * g.inC * g.outC;
    const int64_t paddedInC = (g.inC + mr_ - 1) / mr_ * mr_, paddedOutC = (g.outC + nr_ - 1) / nr_ * nr_;
    Workspace partials(parts * sumFloats);
    parallelFor(parts, [&](int64_t part) {
      Workspace scratch(kPositions * chunk * (paddedInC + paddedOutC));
      float* transformedX = scratch.get();
      float* transformedDy = transformedX + kPositions * chunk * paddedInC;
      float* sums = partials.get() + part * sumFloats;
      const int64_t firstChunk = part * chunks / parts, endChunk = (part + 1) * chunks / parts;
      for (int64_t c = firstChunk; c < endChunk; ++c) {
        const int64_t first = c * chunk, count = std::min(chunk, tiles_ - first);
        transformOutputGradient(first, count, paddedOutC * count, transformedDy);
        transformInput(first, count, 0, g.inC, paddedInC * count, transformedX);
        for (int p = 0; p < kPositions; ++p)
          gemmOnThisThread(PackedBlocksView(PackedBlocksView::Blocked::Rows, transformedX + p * paddedInC * count, count, mr_),
                           PackedBlocksView(PackedBlocksView::Blocked::Cols, transformedDy + p * paddedOutC * count, count, nr_),
                           OutputMatrix{sums + p * g.inC * g.outC, g.outC, 1}, g.inC, g.outC, count, c > firstChunk);
      }
    });
    float* total = partials.get();
    if (parts > 1) {
      parallelRanges(sumFloats, 4096, [&](int64_t begin, int64_t end) {
        for (int64_t part = 1; part < parts; ++part) {
          const float* partial = total + part * sumFloats;
          for (int64_t i = begin; i < end; ++i) total[i] += partial[i];
        }
      });
    }
    transformSums(0, g.inC, total);
  }

  /**
   * Tiles per chunk of runInTileChunks: the chunk's transforms within about 1 MB (a core's L2; b4
   * 64x64 128->64 measured alike from 16 to 64 tiles, 128 tiles 1.15x slower), at most 128 (the
   * GEMMs' reduction; a few hundred floats of the sums move per tile), and every thread a chunk.
   */
  int64_t chunkTiles() const {
    constexpr int64_t budgetFloats = 1 << 18;
    const int64_t paddedChannels = (g_.inC + mr_ - 1) / mr_ * mr_ + (g_.outC + nr_ - 1) / nr_ * nr_;
    const int64_t fit = std::clamp<int64_t>(budgetFloats / (kPositions * paddedChannels), 16, 128);
    return std::max<int64_t>(1, std::min(fit, (tiles_ + numThreads() - 1) / numThreads()));
  }

  /**
   * Input channels per block: the block's transformed X and GEMM results within about 4 MB, a
   * multiple of 48 (whole micro-kernel panels of 6, 8, 12 rows and whole transform blocks).
   */
  static int64_t inputChannelBlock(const WindowGeometry& g, int64_t tiles) {
    constexpr int64_t budgetFloats = 1 << 20;
    const int64_t fit = budgetFloats / (kPositions * (tiles + g.outC));
    return std::min(g.inC, std::max<int64_t>(48, fit / 48 * 48));
  }

  // A dY A^T of tiles [first, first + count), as the GEMMs' B operands: per position
  // (positionFloats apart), slivers of nr output channels row (tile) by row.
  void transformOutputGradient(int64_t first, int64_t count, int64_t positionFloats, float* out) const {
    const WindowGeometry& g = g_;
    transformTiles(first, count, g.outC, nr_, positionFloats, transforms_.outputGradient, out,
                   [&](int64_t b, int64_t row, int64_t col, int64_t c0, int64_t n, float* window) {
                     gatherWindow(dy_ + b * g.outH * g.outW * g.outC, g.outH, g.outW, g.outC, row, col, M, c0, n, window);
                   });
  }

  // B^T X B of tiles [first, first + count) for input channels [c0, c0 + channels), as the GEMMs' A
  // operands: per position (positionFloats apart), panels of mr channels column (tile) by column.
  void transformInput(int64_t first, int64_t count, int64_t c0, int64_t channels, int64_t positionFloats, float* out) const {
    const WindowGeometry& g = g_;
    transformTiles(first, count, channels, mr_, positionFloats, transforms_.input, out,
                   [&](int64_t b, int64_t row, int64_t col, int64_t k0, int64_t n, float* window) {
                     gatherWindow(x_ + b * g.inH * g.inW * g.inC, g.inH, g.inW, g.inC, row - g.padTop, col - g.padLeft,
                                  kAlpha, c0 + k0, n, window);
                   });
  }

  /**
   * transform(window) of tiles [first, first + count) and every block of kChannelBlock of `channels`
   * channels, gather(b, row, col, first channel, count, window) filling the window at the tile's
   * origin, stored per position (positionFloats apart) in blocks of `block` channels tile by tile —
   * element (channel, tile t of the range) at (channel / block * count + t) * block + channel % block,
   * the GEMM's packed layout of A panels and B slivers alike — with zeros past `channels` in the last
   * block. Spread over the threads, unless called from a parallel task.
   */
  template <typename Gather>
  void transformTiles(int64_t first, int64_t count, int64_t channels, int64_t block, int64_t positionFloats,
                      void (*transform)(const float*, float*), float* out, Gather gather) const {
    const int64_t blocks = (channels + kChannelBlock - 1) / kChannelBlock;
    if (channels % block != 0) {
      const int64_t last = channels / block * count * block;
      for (int p = 0; p < kPositions; ++p)
        for (int64_t t = 0; t < count; ++t) {
          float* run = out + p * positionFloats + last + t * block;
          std::fill(run + channels % block, run + block, 0.0f);
        }
    }
    parallelRanges(count * blocks, 8, [&](int64_t begin, int64_t end) {
      alignas(64) float window[kPositions * kChannelBlock];
      alignas(64) float full[kPositions * kChannelBlock];
      for (int64_t item = begin; item < end; ++item) {
        const int64_t t = item / blocks, k0 = item % blocks * kChannelBlock, tile = first + t;
        const int64_t n = std::min<int64_t>(kChannelBlock, channels - k0);
        const int64_t b = tile / (tilesW_ * tilesH_), row = (tile / tilesW_) % tilesH_ * M, col = tile % tilesW_ * M;
        gather(b, row, col, k0, n, window);
        transform(window, full);
        for (int64_t j = 0; j < n;) {  // runs of channels within one block
          const int64_t channel = k0 + j;
          const int64_t run = std::min(n - j, block - channel % block);
          float* dst = out + (channel / block * count + t) * block + channel % block;
          for (int p = 0; p < kPositions; ++p) copyShortRun(dst + p * positionFloats, full + p * kChannelBlock + j, run);
          j += run;
        }
      }
    });
  }

  // dFilter[tap][c0 + c][outC] = G^T sums[.][c][.] G for the block's channels.
  void transformSums(int64_t c0, int64_t channels, const float* sums) const {
    const WindowGeometry& g = g_;
    const int64_t blocks = (g.outC + kChannelBlock - 1) / kChannelBlock;
    parallelRanges(channels * blocks, 16, [&](int64_t begin, int64_t end) {
      alignas(64) float products[kPositions * kChannelBlock];
      alignas(64) float taps[9 * kChannelBlock];
      for (int64_t item = begin; item < end; ++item) {
        const int64_t c = item / blocks, o0 = item % blocks * kChannelBlock;
        const int64_t n = std::min<int64_t>(kChannelBlock, g.outC - o0);
        for (int p = 0; p < kPositions; ++p) loadBlock(products + p * kChannelBlock, sums + (p * channels + c) * g.outC + o0, n);
        transforms_.filterGradient(products, taps);
        for (int tap = 0; tap < 9; ++tap)
          storeBlock(dFilter_ + (tap * g.inC + c0 + c) * g.outC + o0, taps + tap * kChannelBlock, n);
      }
    });
  }

  const float* x_;
  const float* dy_;
  float* dFilter_;
  WindowGeometry g_;
  TileTransforms transforms_;
  int64_t mr_, nr_;
  int64_t tilesH_, tilesW_, tiles_;
  int64_t sliverFloats_;   // one position's transformed dY
  int64_t channelBlock_;
  int64_t panelFloats_;    // one position's transformed X block
};

ConvAlgorithm& forcedAlgorithm() {
  static ConvAlgorithm algorithm = [] {
    const char* requested = std::getenv("SEGKIT_NATIVE_CONV");
    if (requested && std::strcmp(requested, "im2col") == 0) return ConvAlgorithm::Im2col;
    if (requested && std::strcmp(requested, "winograd2") == 0) return ConvAlgorithm::WinogradF2;
    if (requested && std::strcmp(requested, "winograd4") == 0) return ConvAlgorithm::WinogradF4;
    if (requested && std::strcmp(requested, "direct") == 0) return ConvAlgorithm::Direct;
    return ConvAlgorithm::Auto;
  }();
  return algorithm;
}

constexpr const char* kAlgorithmNames[] = {"auto", "im2col", "winograd2", "winograd4", "direct"};

}  // namespace

bool winogradApplies(const WindowGeometry& g) {
  return g.kH == 3 && g.kW == 3 && g.strideH == 1 && g.strideW == 1 && g.dilH == 1 && g.dilW == 1;
}

ConvAlgorithm chooseConvAlgorithm(const WindowGeometry& g) {
  const ConvAlgorithm forced = forcedAlgorithm();
  // The direct convolution on the padded grid where a layer has few channels, measured on a 2-core
  // AVX-512 EPYC against the best of im2col and F(4,3): b4 64x64 16->16 forward 0.40 against 0.56 ms,
  // grad-input 0.34 / 0.51; 32->16 forward 0.55 / 0.71; 3->16 forward 0.13 / 0.49; slower from 32 -> 32
  // (b4 64x64: 1.00 / 0.82) and on wider layers (64 -> 64: 3.5 / 2.1), whose F(4,3) does 4x fewer
  // multiply-adds.
  const bool directWanted = forced == ConvAlgorithm::Direct || (forced == ConvAlgorithm::Auto && g.inC * g.outC <= 512);
  if (directWanted && directConvolutionApplies(g)) return ConvAlgorithm::Direct;
  if (!winogradApplies(g) || forced == ConvAlgorithm::Direct) return ConvAlgorithm::Im2col;
  if (forced != ConvAlgorithm::Auto) return forced;
  // Measured on a 2-core AVX-512 EPYC (one thread, CPU time; both passes), F(4,3) against im2col:
  // 1.5-2.9x faster from 64 channels at 16x16 and larger maps (b4), 2.4x at 16 channels 64x64, but
  // slower on few tiles of wide filters, where the GEMMs have few rows and stream the 4x larger
  // transformed filter (b4 8x8 256->512: 0.5x; 4x4: 0.3x), and with under 8 input channels
  // (3->64 forward: 0.65x). F(2,3) was at best on par with F(4,3) where either won (b4 16x16
  // 256->256: 1.5 / 1.7x) until re-measured on few tiles (below). Past 512 input channels (in blocks):
  // PSPNet's b2 32x32 4096->512 2.0x forward, 1.5x grad-input; 1024->256 1.8x / 1.2x.
  const int64_t tiles = g.batch * ((g.outH + 3) / 4) * ((g.outW + 3) / 4);
  const int64_t filterSize = g.inC * g.outC;
  // Re-measured with both threads (wall time, 2-core Zen 5 EPYC, after the GEMM and transform work
  // of 0.6.x): on b4 8x8 maps (16 tiles) im2col wins everywhere (256->512: 1.9 against 3.4 ms); from
  // 32 tiles F(4,3) wins up to 64K filter weights (b4 16x16 128->256: 1.0 against 1.9 ms; 64->64:
  // 0.31 / 0.48; b2 16x16 256->256: 1.4 / 1.8) and from 64 tiles at any width (b4 16x16 512->512:
  // 11.2 / 15.8), while b2 16x16 512->512 (32 tiles, 256K weights) is 9.2 against 8.7.
  // On 32-64 tiles of F(4,3) (b4 16x16 maps), F(2,3)'s 4x as many tiles fill the GEMMs' rows and its
  // transformed filter is 16/36 the size, under the GEMMs' time there (interleaved, forward / grad-input,
  // F(2,3) against the best of im2col and F(4,3)): b4 16x16 64->64 0.31 / 0.39, 128->64 0.55 / 0.69,
  // 128->256 1.62 / 1.74, 256->512 6.0 / 6.4; b2 16x16 128->256 1.03 / 1.13 forward, 1.36 / 1.19
  // grad-input. Under 48 input channels im2col beats both (b4 16x16 32->64: 0.21 against 0.33 ms);
  // from 512 x 512 weights F(4,3) (b4 16x16: F(2,3) 40 ms against 12.7).
  if (tiles >= 32 && tiles <= 64 && filterSize <= 128 * 1024)
    return g.inC >= 48 ? ConvAlgorithm::WinogradF2 : ConvAlgorithm::Im2col;
  const bool enoughTiles = tiles >= 64 || (tiles >= 32 && filterSize <= 64 * 1024);
  // Its buffers (the transformed filter; with input channel blocks, also the transformed input
  // block and the products of every tile; with output channel blocks, the transformed input of
  // every tile) kept within 64 MB.
  const int64_t block = WinogradConv<4>::inputChannelBlock(g);
  const int64_t floats = g.inC > WinogradConv<4>::kMaxInputChannelBlock ? 36 * (block * g.outC + tiles * (block + g.outC))
                         : 36 * filterSize > WinogradConv<4>::kTransformedFilterFloats ? 36 * tiles * g.inC
                                                                                      : 36 * filterSize;
  const bool fits = floats <= 16 * 1024 * 1024;
  return g.inC >= 8 && enoughTiles && fits ? ConvAlgorithm::WinogradF4 : ConvAlgorithm::Im2col;
}

void winogradConv2d(const float* x, const float* filter, float* out, const WindowGeometry& g, int tile,
                    bool flippedSwappedFilter) {
  if (tile == 2)
    WinogradConv<2>(x, filter, out, g, flippedSwappedFilter).run();
  else
    WinogradConv<4>(x, filter, out, g, flippedSwappedFilter).run();
}

ConvAlgorithm chooseFilterGradientAlgorithm(const WindowGeometry& g) {
  const bool automatic = forcedAlgorithm() == ConvAlgorithm::Auto;
  // The direct filter gradient (conv.cc) for up to 1024 weights per tap or 16 output channels,
  // measured on a 2-core AVX-512 EPYC against the best of the others (interleaved): b4 64x64 16->16
  // 0.25 against 0.39 ms, 3->16 0.06 / 0.38, 3->64 0.21 / 0.59, 16->64 0.75 / 1.02, 128->16 1.49 / 2.11,
  // b4 32x32 32->32 0.23 / 0.27; on par at 32->32 over 4096 pixels and more (b4 64x64 0.80 / 0.77),
  // slower from 2048 weights of wider outputs (64->32: 1.46 / 1.28 by F(4,3); 64->64 3.0 / 1.95).
  const bool directWanted =
      forcedAlgorithm() == ConvAlgorithm::Direct || (automatic && (g.inC * g.outC <= 1024 || g.outC <= 16));
  if (directWanted && directFilterGradientApplies(g)) return ConvAlgorithm::Direct;
  const int64_t tiles = g.batch * ((g.outH + 3) / 4) * ((g.outW + 3) / 4);
  // F(4,3) in chunks of tiles (WinogradFilterGradient::runInTileChunks), measured on a 2-core AVX-512
  // EPYC against the padded-grid GEMM: b4 64x64 128->64 3.3 against 6.7 ms, 32->32 0.75 / 1.01, b2
  // 128x128 32->32 1.45 / 1.83; and against the whole-map F(4,3): b4 32x32 128->128 1.9 / 2.9, 64->128
  // 0.94 / 1.99. With under 32 channels on either side the padded GEMM stays faster (b4 64x64 16->16
  // 0.49 / 0.65, 32->16 0.56 / 0.76, 16->32 0.56 / 0.69).
  if (automatic && winogradApplies(g) && tiles >= 32 && g.inC >= 32 && g.outC >= 32 &&
      WinogradFilterGradient<4>::sumsPerThreadFit(g))
    return ConvAlgorithm::WinogradF4;
  if (automatic && paddedFilterGradientPays(g)) return ConvAlgorithm::PaddedGemm;
  if (!winogradApplies(g) || forcedAlgorithm() == ConvAlgorithm::Direct) return ConvAlgorithm::Im2col;
  if (!automatic) return forcedAlgorithm();
  // Measured on a 2-core AVX-512 EPYC against im2col (bench/backend-native.js): F(4,3) 2.4-3.0x faster
  // from 16x16 maps with 128-4096 channels (PSPNet's b2 32x32 4096->512: 747 -> 249 ms), 1.1-1.6x on
  // b4 8x8 512->512; slower on few tiles, where the transformed sums (36 per filter weight) outweigh
  // the products (b4 4x4 1024->1024, 4 tiles: 0.3x; b4 8x8, 16 tiles: 1.0x at 256 input channels, 0.6x
  // at 1024), and on narrow layers, whose GEMMs are mostly padding to the micro-kernel's 12 x 32 tile
  // (b4 64x64 16->16: 0.4x, 3->16: 0.65x; 32->16: 1.0x; 32->32: 1.2x). F(2,3) never beat F(4,3).
  // Re-measured once the im2col GEMM split its long reductions between threads: im2col is now faster
  // on 16 tiles (b4 8x8 256->512: 1.7 against 2.6 ms; 512->512: 3.3 against 5.1).
  const bool enoughTiles = tiles >= 32;
  const bool wideEnough = g.inC >= 16 && g.outC >= 32;
  // The transformed dY within the workspace cache's largest block (reused, not faulted in, each call).
  const bool fits = WinogradFilterGradient<4>::transformedOutputFloats(g) <= kCachedBlockFloats;
  return enoughTiles && wideEnough && fits ? ConvAlgorithm::WinogradF4 : ConvAlgorithm::Im2col;
}

void winogradConv2dBackpropFilter(const float* x, const float* dy, float* dFilter, const WindowGeometry& g, int tile) {
  if (tile == 2)
    WinogradFilterGradient<2>(x, dy, dFilter, g).run();
  else
    WinogradFilterGradient<4>(x, dy, dFilter, g).run();
}

const char* convAlgorithmName() { return kAlgorithmNames[static_cast<int>(forcedAlgorithm())]; }

bool selectConvAlgorithm(const char* name) {
  for (int i = 0; i < 5; ++i)
    if (std::strcmp(name, kAlgorithmNames[i]) == 0) {
      forcedAlgorithm() = static_cast<ConvAlgorithm>(i);
      return true;
    }
  return false;
}

}  // namespace segkit
