#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "isa_dispatch.h"
#include "thread_pool.h"
#include "workspace.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SEGKIT_X86 1
#endif

namespace segkit {
namespace {

// ---------------------------------------------------------------------------------------------
// Micro-kernels, one per instruction set, all instances of gemm_microkernel.inl (see there).

// Portable: GCC/Clang vector extensions (SSE2 on any x86-64, NEON on arm64), 6 x 8 tile.
namespace portable {
#if defined(__GNUC__)
struct Vec {
  static constexpr int64_t kLanes = 4;
  typedef float Type __attribute__((vector_size(16), aligned(4)));
  static Type zero() { return Type{0, 0, 0, 0}; }
  static Type load(const float* p) { Type v; std::memcpy(&v, p, sizeof(v)); return v; }
  static Type loadu(const float* p) { return load(p); }
  static void storeu(float* p, Type v) { std::memcpy(p, &v, sizeof(v)); }
  static Type broadcast(const float* p) { return Type{*p, *p, *p, *p}; }
  static Type fmadd(Type a, Type b, Type c) { return a * b + c; }
  static Type add(Type a, Type b) { return a + b; }
};
constexpr int64_t kRows = 6;
constexpr int64_t kVectors = 2;
constexpr int kDirectRows = 6, kDirectVectors = 2, kDirectRowsOneVector = 12;
#else
struct Vec {
  static constexpr int64_t kLanes = 1;
  using Type = float;
  static Type zero() { return 0.0f; }
  static Type load(const float* p) { return *p; }
  static Type loadu(const float* p) { return *p; }
  static void storeu(float* p, Type v) { *p = v; }
  static Type broadcast(const float* p) { return *p; }
  static Type fmadd(Type a, Type b, Type c) { return a * b + c; }
  static Type add(Type a, Type b) { return a + b; }
};
constexpr int64_t kRows = 4;
constexpr int64_t kVectors = 4;
constexpr int kDirectRows = 4, kDirectVectors = 4, kDirectRowsOneVector = 4;
#endif
constexpr int kVectorRegisters = 16;
#include "gemm_microkernel.inl"
}  // namespace portable

#ifdef SEGKIT_X86
// Each ISA's namespace below is compiled for that instruction set (functions only: the CPU check
// decides whether they ever run), by a target pragma around it.
// AVX2 + FMA: 16 ymm registers, a 6 x 16 tile = 12 accumulators + 2 B vectors + 1 broadcast.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace avx2 {
struct Vec {
  static constexpr int64_t kLanes = 8;
  using Type = __m256;
  static Type zero() { return _mm256_setzero_ps(); }
  static Type load(const float* p) { return _mm256_load_ps(p); }
  static Type loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, Type v) { _mm256_storeu_ps(p, v); }
  static Type broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static Type fmadd(Type a, Type b, Type c) { return _mm256_fmadd_ps(a, b, c); }
  static Type add(Type a, Type b) { return _mm256_add_ps(a, b); }
};
constexpr int64_t kRows = 6;
constexpr int64_t kVectors = 2;
constexpr int kDirectRows = 6, kDirectVectors = 2, kDirectRowsOneVector = 12;
constexpr int kVectorRegisters = 16;
#include "gemm_microkernel.inl"
}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

// AVX-512 (F; BW/VL required by the dispatch so the whole family is there): 32 zmm registers,
// a 12 x 32 tile = 24 accumulators + 2 B vectors + 1 broadcast.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma")
#endif
namespace avx512 {
struct Vec {
  static constexpr int64_t kLanes = 16;
  using Type = __m512;
  static Type zero() { return _mm512_setzero_ps(); }
  static Type load(const float* p) { return _mm512_load_ps(p); }
  static Type loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, Type v) { _mm512_storeu_ps(p, v); }
  static Type broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static Type fmadd(Type a, Type b, Type c) { return _mm512_fmadd_ps(a, b, c); }
  static Type add(Type a, Type b) { return _mm512_add_ps(a, b); }
};
constexpr int64_t kRows = 12;
constexpr int64_t kVectors = 2;
// Direct convolution: 8 x 2 and 16 x 1 vectors, whole tiles on power-of-two rows (12 x 2 and 24 x 1 left
// a partial tile on rows of 64 pixels, and measured up to 10% slower).
constexpr int kDirectRows = 8, kDirectVectors = 2, kDirectRowsOneVector = 16;
constexpr int kVectorRegisters = 32;
#include "gemm_microkernel.inl"
namespace rows8 {
constexpr int64_t kRows = 8;
constexpr int64_t kVectors = 3;
#include "gemm_microkernel.inl"
}  // namespace rows8
}  // namespace avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

bool cpuHasAvx2Fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
bool cpuHasAvx512() {
  return cpuHasAvx2Fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}
#endif

// c[MR x NR] (row stride ldc) = (accumulate ? c : 0) + packedA * packedB over kc steps.
using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);
// The same with B's NR / lanes vectors of step p at bVectors[j] + p * ldb (a B read in place).
using InPlaceBMicroKernel = void (*)(int64_t kc, const float* a, const float* const* bVectors, int64_t ldb, float* c,
                                     int64_t ldc, bool accumulate);

/**
 * One micro-kernel with its tile and cache blocking: a KC x NR sliver of packed B streams through
 * L1, an MC x KC block of packed A stays in L2, a KC x NC panel of B in L3; a long KC amortises
 * loading and storing the C tile. MC is a multiple of MR.
 */
using DirectConvRowKernel = void (*)(const float* in, const int64_t* tapOffsets, int64_t taps, int64_t channels,
                                     const float* filter, int64_t outC, float* out, int64_t pixels, bool rowsOf3);

using DirectFilterGradientRowsKernel = void (*)(const float* in, int64_t channels, int64_t inRowStride, int64_t inW,
                                                int64_t padLeft, const float* dy, int64_t outC, int64_t dyRowStride, int64_t rows,
                                                int64_t pixels, float* dW, int64_t tapStride);

struct KernelSpec {
  const char* name;
  MicroKernel kernel;
  InPlaceBMicroKernel inPlaceBKernel;
  DirectConvRowKernel directConvRow;
  DirectFilterGradientRowsKernel directFilterGradientRows;
  int64_t lanes;  // floats per vector; NR / lanes vectors per row of the tile
  int64_t mr, nr, kc, mc, nc;
};

// Most vectors per row of any micro-kernel's tile.
constexpr int64_t kMaxTileVectors = 4;

// Below this many multiply-adds a GEMM runs on one thread: waking the pool costs more.
constexpr int64_t kParallelThreshold = 1 << 17;

// gemmSplittingK's bounds: at least this many KC steps per thread, partials within the workspace
// cache's largest block. From 2 steps the split beat sharing out C's columns on a deep layer's small
// map (2-core AVX-512 EPYC, b4 8x8 256->512 forward, k = 2304: 2.28 -> 1.72 ms; 4 steps were required).
constexpr int64_t kMinSplitSteps = 2;
constexpr int64_t kMaxSplitPartialFloats = Workspace::kMaxCachedBytes / sizeof(float);

// Largest tile and blocks over all kernels: sizes of the per-thread packing buffers.
constexpr int64_t kMaxTile = 12 * 32;
constexpr int64_t kMaxPackA = 72 * 512;
constexpr int64_t kMaxPackB = 3072 * 512;

const KernelSpec kPortable{"portable", portable::microKernel, portable::microKernelInPlaceB, portable::directConvRow, portable::directFilterGradientRows, portable::Vec::kLanes,
                           portable::kRows, portable::kCols, 256, 72, 3072};
#ifdef SEGKIT_X86
// AVX2 blocking tuned on Zen 3 (32 KiB L1d, 512 KiB L2 per core).
const KernelSpec kAvx2{"avx2-fma", avx2::microKernel, avx2::microKernelInPlaceB, avx2::directConvRow, avx2::directFilterGradientRows, avx2::Vec::kLanes, avx2::kRows,
                       avx2::kCols, 512, 72, 3072};
// AVX-512: the same blocking measured best of KC 192-512 x MC 72-288 (and tiles 8, 12, 14 x 32) on
// a 2-core AVX-512 EPYC.
const KernelSpec kAvx512{"avx512", avx512::microKernel, avx512::microKernelInPlaceB, avx512::directConvRow, avx512::directFilterGradientRows, avx512::Vec::kLanes,
                         avx512::kRows, avx512::kCols, 512, 72, 3072};
// AVX-512's second tile, 8 x 48 (24 accumulators, 3 B vectors, 1 broadcast): for C whose rows or columns
// the 12 x 32 tile pads more (a narrow layer's filter gradient: 64 x 576 is 72 x 576 in 12-row
// panels; b4 64x64 64->64 3.83 -> 3.43 ms, 16->16 0.39 -> 0.29), and with fewer loads per multiply-add.
const KernelSpec kAvx512Rows8{"avx512", avx512::rows8::microKernel, avx512::rows8::microKernelInPlaceB, avx512::directConvRow, avx512::directFilterGradientRows,
                              avx512::Vec::kLanes, avx512::rows8::kRows, avx512::rows8::kCols, 512, 72, 3072};
#endif

/** The kernels this CPU can run, fastest first. */
std::vector<const KernelSpec*> availableKernels() {
  std::vector<const KernelSpec*> kernels;
#ifdef SEGKIT_X86
  if (cpuHasAvx512()) kernels.push_back(&kAvx512);
  if (cpuHasAvx2Fma()) kernels.push_back(&kAvx2);
#endif
  kernels.push_back(&kPortable);
  return kernels;
}

const KernelSpec* findKernel(const char* name) {
  // "avx2" is accepted for "avx2-fma" (the SEGKIT_NATIVE_ISA spelling).
  const std::string wanted = std::strcmp(name, "avx2") == 0 ? "avx2-fma" : name;
  for (const KernelSpec* spec : availableKernels())
    if (wanted == spec->name) return spec;
  return nullptr;
}

/**
 * The kernel in use: the fastest this CPU runs, or SEGKIT_NATIVE_ISA's (avx512, avx2, portable) to
 * force a lower path; a name the CPU cannot run falls back to the fastest (isaRequestProblem says so).
 */
const KernelSpec*& activeSpec() {
  static const KernelSpec* spec = [] {
    const char* requested = std::getenv("SEGKIT_NATIVE_ISA");
    const KernelSpec* forced = requested && *requested ? findKernel(requested) : nullptr;
    return forced ? forced : availableKernels().front();
  }();
  return spec;
}

// Packing buffers, one set per thread, 64-byte aligned for the micro-kernel's aligned loads.
struct PackBuffers {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> a{static_cast<float*>(std::aligned_alloc(64, sizeof(float) * kMaxPackA))};
  std::unique_ptr<float, Free> b{static_cast<float*>(std::aligned_alloc(64, sizeof(float) * kMaxPackB))};
};

PackBuffers& threadPackBuffers() {
  thread_local PackBuffers buffers;
  return buffers;
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t roundUp(int64_t a, int64_t multiple) { return ceilDiv(a, multiple) * multiple; }

/**
 * The tile for one GEMM: the active kernel's, or on AVX-512 the 8 x 48 tile where it pads C's rows
 * and columns to less (on a tie too), unless an operand is stored packed for the active tile.
 */
const KernelSpec& tileFor(const MatrixView& a, const MatrixView& b, int64_t m, int64_t n) {
  const KernelSpec& active = *activeSpec();
#ifdef SEGKIT_X86
  if (&active == &kAvx512 && !a.packedPanel(0, 0, active.mr) && !b.packedSliver(0, 0, active.nr)) {
    const auto paddedArea = [&](const KernelSpec& spec) { return roundUp(m, spec.mr) * roundUp(n, spec.nr); };
    if (paddedArea(kAvx512Rows8) <= paddedArea(active)) return kAvx512Rows8;
  }
#endif
  return active;
}

// Packs B rows [pc, pc + kc) x columns [col0, col0 + cols) as consecutive slivers of NR columns (the
// last zero-padded) at dst.
void packSlivers(const MatrixView& b, int64_t NR, int64_t pc, int64_t kc, int64_t col0, int64_t cols, float* dst) {
  for (int64_t jr = 0; jr < cols; jr += NR) {
    const int64_t nr = std::min(NR, cols - jr);
    float* sliver = dst + jr * kc;
    if (nr < NR) std::memset(sliver, 0, sizeof(float) * kc * NR);
    b.copyTile(pc, kc, col0 + jr, nr, sliver, NR, 1);
  }
}

// Packs A rows [row0, row0 + rows) x columns [pc, pc + kc) as consecutive panels of MR rows (the
// last zero-padded) at dst.
void packPanels(const MatrixView& a, int64_t MR, int64_t row0, int64_t rows, int64_t pc, int64_t kc, float* dst) {
  for (int64_t ir = 0; ir < rows; ir += MR) {
    const int64_t mr = std::min(MR, rows - ir);
    float* panel = dst + ir * kc;
    if (mr < MR) std::memset(panel, 0, sizeof(float) * kc * MR);
    a.copyTile(row0 + ir, mr, pc, kc, panel, 1, MR);
  }
}

/**
 * `units` (panels of A or slivers of B) split into a few chunks per thread (so a thread slowed down by
 * another process does not hold up the rest) whose sizes differ by at most one unit: with fixed-size
 * chunks the last was often a sliver of the others (16 slivers in chunks of 3: 3,3,3,3,3,1), and
 * the threads' shares differed by up to a fifth.
 */
struct EvenChunks {
  EvenChunks(int64_t units, int64_t threads) : units(units), count(std::min(units, threads * 3)) {}
  int64_t begin(int64_t chunk) const { return chunk * units / count; }
  int64_t end(int64_t chunk) const { return (chunk + 1) * units / count; }
  int64_t units, count;
};

/**
 * A sliver of B as the micro-kernel reads it: packed (NR floats per step, 64-byte aligned from
 * `packed`), or in place (vector j of step p at inPlace[j] + p * ldb).
 */
struct BSliver {
  const float* packed = nullptr;
  const float* inPlace[kMaxTileVectors] = {};
  int64_t ldb = 0;
};

BSliver packedSliver(const float* packed) {
  BSliver sliver;
  sliver.packed = packed;
  return sliver;
}

/**
 * The sliver of B's columns [col, col + NR) from row `row`, read in place; its vectors past column
 * colEnd (a partial sliver's, whose results are discarded) read the first vector's memory again.
 */
BSliver inPlaceSliver(const KernelSpec& spec, const MatrixView& b, int64_t row, int64_t col, int64_t colEnd) {
  BSliver sliver;
  sliver.ldb = b.vectorRowStride();
  for (int64_t j = 0; j < spec.nr / spec.lanes; ++j) {
    const int64_t vectorCol = col + j * spec.lanes;
    sliver.inPlace[j] = vectorCol < colEnd ? b.columnVector(row, vectorCol, spec.lanes) : sliver.inPlace[0];
  }
  return sliver;
}

/**
 * How one KC x nc block of B (rows pc.., columns jc..) reaches the micro-kernel: stored in the
 * packed layout, read in place (MatrixView::columnVector), or else packed by the caller into
 * `buffer` (needsPacking).
 */
class BBlock {
 public:
  BBlock(const KernelSpec& spec, const MatrixView& b, int64_t pc, int64_t kc, int64_t jc, int64_t nc, const float* buffer)
      : spec_(spec), b_(b), pc_(pc), kc_(kc), jc_(jc), nc_(nc), buffer_(buffer),
        packed_(b.packedSliver(pc, jc, spec.nr) != nullptr),
        inPlace_(!packed_ && b.columnVector(pc, jc, spec.lanes) != nullptr) {}

  bool needsPacking() const { return !packed_ && !inPlace_; }

  /** The sliver at column offset jr of the block. */
  BSliver sliver(int64_t jr) const {
    if (inPlace_) return inPlaceSliver(spec_, b_, pc_, jc_ + jr, jc_ + nc_);
    return packedSliver(packed_ ? b_.packedSliver(pc_, jc_ + jr, spec_.nr) : buffer_ + jr * kc_);
  }

 private:
  const KernelSpec& spec_;
  const MatrixView& b_;
  int64_t pc_, kc_, jc_, nc_;
  const float* buffer_;
  bool packed_, inPlace_;
};

void runMicroKernel(const KernelSpec& spec, int64_t kc, const float* a, const BSliver& b, float* c, int64_t ldc,
                    bool accumulate) {
  if (b.packed)
    spec.kernel(kc, a, b.packed, c, ldc, accumulate);
  else
    spec.inPlaceBKernel(kc, a, b.inPlace, b.ldb, c, ldc, accumulate);
}

// C rows [ic, ic + mc) x columns [jc, jc + nc) (+)= packed A panels x B slivers over one kc step;
// panelA(ir) / sliverB(jr) give the panel / sliver at offset ir / jr of the block.
template <typename PanelA, typename SliverB>
void macroKernel(const KernelSpec& spec, const PanelA& panelA, const SliverB& sliverB, OutputMatrix c, int64_t ic,
                 int64_t mc, int64_t jc, int64_t nc, int64_t kc, bool accumulate) {
  const int64_t MR = spec.mr, NR = spec.nr;
  alignas(64) float edgeTile[kMaxTile];
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int64_t nr = std::min(NR, nc - jr);
    const BSliver bSliver = sliverB(jr);
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int64_t mr = std::min(MR, mc - ir);
      float* cTile = c.data + (ic + ir) * c.rowStride + (jc + jr) * c.colStride;
      if (mr == MR && nr == NR && c.colStride == 1) {
        runMicroKernel(spec, kc, panelA(ir), bSliver, cTile, c.rowStride, accumulate);
        continue;
      }
      // Partial or column-strided tile: compute into a scratch tile, then merge.
      runMicroKernel(spec, kc, panelA(ir), bSliver, edgeTile, NR, false);
      for (int64_t i = 0; i < mr; ++i) {
        for (int64_t j = 0; j < nr; ++j) {
          float& out = cTile[i * c.rowStride + j * c.colStride];
          out = accumulate ? out + edgeTile[i * NR + j] : edgeTile[i * NR + j];
        }
      }
    }
  }
}

// Serial GEMM on the sub-rectangle rows [rowBegin, rowEnd) x cols [colBegin, colEnd) of C.
void gemmBlock(const KernelSpec& spec, const MatrixView& a, const MatrixView& b, OutputMatrix c, int64_t rowBegin,
               int64_t rowEnd, int64_t colBegin, int64_t colEnd, int64_t k, bool accumulate) {
  const int64_t MR = spec.mr, NR = spec.nr, KC = spec.kc, MC = spec.mc, NC = spec.nc;
  PackBuffers& buffers = threadPackBuffers();
  float* packedA = buffers.a.get();
  float* packedB = buffers.b.get();
  for (int64_t jc = colBegin; jc < colEnd; jc += NC) {
    const int64_t nc = std::min(NC, colEnd - jc);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      // Operands stored packed, or whose column vectors the micro-kernel can read in place, are not
      // packed again; the others are packed here.
      const BBlock blockB(spec, b, pc, kc, jc, nc, packedB);
      if (blockB.needsPacking()) packSlivers(b, NR, pc, kc, jc, nc, packedB);
      auto sliverB = [&](int64_t jr) { return blockB.sliver(jr); };
      for (int64_t ic = rowBegin; ic < rowEnd; ic += MC) {
        const int64_t mc = std::min(MC, rowEnd - ic);
        const bool aPacked = a.packedPanel(ic, pc, MR) != nullptr;
        if (!aPacked) packPanels(a, MR, ic, mc, pc, kc, packedA);
        auto panelA = [&](int64_t ir) { return aPacked ? a.packedPanel(ic + ir, pc, MR) : packedA + ir * kc; };
        macroKernel(spec, panelA, sliverB, c, ic, mc, jc, nc, kc, accumulate || pc > 0);
      }
    }
  }
}

/**
 * Multi-threaded GEMM sharing one packed copy of an operand between threads: for every KC x NC
 * block of B, the threads pack B together into the caller's buffer, then take row chunks of C (a
 * few per thread, so a thread slowed down by another process does not hold up the rest), each
 * packing only its own rows of A. Packing B once instead of once per chunk is what lets the
 * threads run at the micro-kernel's speed (split rows each packing all of B cost up to a third).
 */
void gemmSharingB(const KernelSpec& spec, const MatrixView& a, const MatrixView& b, OutputMatrix c, int64_t m,
                  int64_t n, int64_t k, bool accumulate, int64_t threads) {
  const int64_t MR = spec.mr, NR = spec.nr, KC = spec.kc, MC = spec.mc, NC = spec.nc;
  float* sharedB = threadPackBuffers().b.get();
  const EvenChunks rowChunks(ceilDiv(m, MR), threads);
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      const BBlock blockB(spec, b, pc, kc, jc, nc, sharedB);
      if (blockB.needsPacking()) {
        parallelRanges(ceilDiv(nc, NR), 4, [&](int64_t first, int64_t last) {
          packSlivers(b, NR, pc, kc, jc + first * NR, std::min(nc, last * NR) - first * NR, sharedB + first * NR * kc);
        });
      }
      auto sliverB = [&](int64_t jr) { return blockB.sliver(jr); };
      parallelFor(rowChunks.count, [&](int64_t t) {
        float* packedA = threadPackBuffers().a.get();
        const int64_t rowEnd = std::min(m, rowChunks.end(t) * MR);
        for (int64_t ic = rowChunks.begin(t) * MR; ic < rowEnd; ic += MC) {
          const int64_t mc = std::min(MC, rowEnd - ic);
          const bool aPacked = a.packedPanel(ic, pc, MR) != nullptr;
          if (!aPacked) packPanels(a, MR, ic, mc, pc, kc, packedA);
          auto panelA = [&](int64_t ir) { return aPacked ? a.packedPanel(ic + ir, pc, MR) : packedA + ir * kc; };
          macroKernel(spec, panelA, sliverB, c, ic, mc, jc, nc, kc, accumulate || pc > 0);
        }
      });
    }
  }
}

/**
 * The same with the roles turned, for C with too few rows to share out (m below a few MC per
 * thread): the threads pack all of A's KC-column block together, then take column chunks of C,
 * each packing only its own slivers of B.
 */
void gemmSharingA(const KernelSpec& spec, const MatrixView& a, const MatrixView& b, OutputMatrix c, int64_t m,
                  int64_t n, int64_t k, bool accumulate, int64_t threads) {
  const int64_t MR = spec.mr, NR = spec.nr, KC = spec.kc, MC = spec.mc, NC = spec.nc;
  const int64_t paddedRows = roundUp(m, MR);
  Workspace sharedA(paddedRows * KC);
  const EvenChunks columnChunks(ceilDiv(n, NR), threads);
  for (int64_t pc = 0; pc < k; pc += KC) {
    const int64_t kc = std::min(KC, k - pc);
    const bool aPacked = a.packedPanel(0, pc, MR) != nullptr;
    if (!aPacked) {
      parallelRanges(paddedRows / MR, 2, [&](int64_t first, int64_t last) {
        packPanels(a, MR, first * MR, std::min(m, last * MR) - first * MR, pc, kc, sharedA.get() + first * MR * kc);
      });
    }
    parallelFor(columnChunks.count, [&](int64_t t) {
      float* packedB = threadPackBuffers().b.get();
      const int64_t colEnd = std::min(n, columnChunks.end(t) * NR);
      for (int64_t jc = columnChunks.begin(t) * NR; jc < colEnd; jc += NC) {
        const int64_t nc = std::min(NC, colEnd - jc);
        const BBlock blockB(spec, b, pc, kc, jc, nc, packedB);
        if (blockB.needsPacking()) packSlivers(b, NR, pc, kc, jc, nc, packedB);
        auto sliverB = [&](int64_t jr) { return blockB.sliver(jr); };
        for (int64_t ic = 0; ic < m; ic += MC) {
          const int64_t mc = std::min(MC, m - ic);
          auto panelA = [&](int64_t ir) {
            return aPacked ? a.packedPanel(ic + ir, pc, MR) : sharedA.get() + (ic + ir) * kc;
          };
          macroKernel(spec, panelA, sliverB, c, ic, mc, jc, nc, kc, accumulate || pc > 0);
        }
      }
    });
  }
}

/** Columns [offset, ...) of A (rows of B when `ofRows`): one part of a split reduction dimension. */
class ReductionPartView final : public MatrixView {
 public:
  ReductionPartView(const MatrixView& inner, int64_t offset, bool ofRows) : inner_(inner), offset_(offset), ofRows_(ofRows) {}
  void copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                int64_t dstColStride) const override {
    if (ofRows_)
      inner_.copyTile(row0 + offset_, rows, col0, cols, dst, dstRowStride, dstColStride);
    else
      inner_.copyTile(row0, rows, col0 + offset_, cols, dst, dstRowStride, dstColStride);
  }
  const float* packedPanel(int64_t row0, int64_t col0, int64_t mr) const override {
    return ofRows_ ? nullptr : inner_.packedPanel(row0, col0 + offset_, mr);
  }
  const float* packedSliver(int64_t row0, int64_t col0, int64_t nr) const override {
    return ofRows_ ? inner_.packedSliver(row0 + offset_, col0, nr) : nullptr;
  }
  const float* columnVector(int64_t row, int64_t col0, int64_t lanes) const override {
    return ofRows_ ? inner_.columnVector(row + offset_, col0, lanes) : nullptr;
  }
  int64_t vectorRowStride() const override { return inner_.vectorRowStride(); }

 private:
  const MatrixView& inner_;
  int64_t offset_;
  bool ofRows_;
};

/**
 * For a long reduction into a small C (a narrow layer's filter gradient over a large map: 32 x 288
 * from 32768 pixels): each thread multiplies its own range of k into a private partial C, and the
 * partials are summed at the end. Sharing A or B instead splits C's few rows or columns and meets
 * the other threads twice per KC step: 128 times for those 32768 pixels, each wait as long as the
 * slowest thread's share of a step that is itself only ~50 us.
 */
void gemmSplittingK(const KernelSpec& spec, const MatrixView& a, const MatrixView& b, OutputMatrix c, int64_t m,
                    int64_t n, int64_t k, bool accumulate, int64_t parts) {
  Workspace partials(parts * m * n);
  parallelFor(parts, [&](int64_t part) {
    // Equal shares of k: boundaries on KC steps gave 9 steps as 4 + 5, a quarter more work for one
    // thread (b4 8x8 512->512 forward, k = 4608: 3.67 -> 3.39 ms split evenly).
    const int64_t begin = part * k / parts, end = (part + 1) * k / parts;
    float* partial = partials.get() + part * m * n;
    if (begin == end) {
      std::fill(partial, partial + m * n, 0.0f);
      return;
    }
    gemmBlock(spec, ReductionPartView(a, begin, false), ReductionPartView(b, begin, true), OutputMatrix{partial, n, 1},
              0, m, 0, n, end - begin, false);
  });
  // C (+)= the sum of the partials, in part order (the same result on every run), walking C's
  // contiguous axis.
  if (c.colStride == 1) {  // row by row, contiguous (vectorised) loops
    parallelRanges(m, 8, [&](int64_t first, int64_t last) {
      for (int64_t row = first; row < last; ++row) {
        float* out = c.data + row * c.rowStride;
        const float* partial = partials.get() + row * n;
        if (accumulate) {
          for (int64_t j = 0; j < n; ++j) out[j] += partial[j];
        } else {
          for (int64_t j = 0; j < n; ++j) out[j] = partial[j];
        }
        for (int64_t part = 1; part < parts; ++part) {
          const float* next = partial + part * m * n;
          for (int64_t j = 0; j < n; ++j) out[j] += next[j];
        }
      }
    });
    return;
  }
  // A transposed C (a filter gradient written as dFilter^T): column by column, C's contiguous axis.
  parallelRanges(n, 8, [&](int64_t first, int64_t last) {
    for (int64_t col = first; col < last; ++col) {
      for (int64_t row = 0; row < m; ++row) {
        float& out = c.data[row * c.rowStride + col * c.colStride];
        float sum = accumulate ? out : 0.0f;
        for (int64_t part = 0; part < parts; ++part) sum += partials.get()[part * m * n + row * n + col];
        out = sum;
      }
    }
  });
}

}  // namespace

namespace {

/** dst[i * dstStride + j] = src[i * srcStride + j]: `runs` contiguous runs of `length`. */
void copyRuns(const float* src, int64_t srcStride, float* dst, int64_t dstStride, int64_t runs, int64_t length) {
  if (length == 32) {  // a whole AVX-512 sliver: a fixed-size copy the compiler inlines
    for (int64_t i = 0; i < runs; ++i) std::memcpy(dst + i * dstStride, src + i * srcStride, sizeof(float) * 32);
    return;
  }
  if (length <= 16) {  // an A panel's column (12 floats on AVX-512): inline, where memcpy was a call per run
    for (int64_t i = 0; i < runs; ++i)
      for (int64_t j = 0; j < length; ++j) dst[i * dstStride + j] = src[i * srcStride + j];
    return;
  }
  for (int64_t i = 0; i < runs; ++i) std::memcpy(dst + i * dstStride, src + i * srcStride, sizeof(float) * length);
}

}  // namespace

namespace {

/** Runs [iBegin, iEnd) of copyTransposed: 4 x 4 blocks through SSE registers (x86-64's baseline), then scalars. */
void copyTransposedRuns(const float* src, int64_t srcStride, float* dst, int64_t dstStride, int64_t iBegin, int64_t iEnd,
                        int64_t length) {
  int64_t i = iBegin;
#ifdef SEGKIT_X86
  // 4 loads, 8 shuffles and 4 stores for 16 floats, where the scalar loop below moves one float per
  // load and store.
  for (; i + 4 <= iEnd; i += 4) {
    int64_t j = 0;
    for (; j + 4 <= length; j += 4) {
      __m128 r0 = _mm_loadu_ps(src + j * srcStride + i), r1 = _mm_loadu_ps(src + (j + 1) * srcStride + i);
      __m128 r2 = _mm_loadu_ps(src + (j + 2) * srcStride + i), r3 = _mm_loadu_ps(src + (j + 3) * srcStride + i);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      _mm_storeu_ps(dst + i * dstStride + j, r0);
      _mm_storeu_ps(dst + (i + 1) * dstStride + j, r1);
      _mm_storeu_ps(dst + (i + 2) * dstStride + j, r2);
      _mm_storeu_ps(dst + (i + 3) * dstStride + j, r3);
    }
    for (; j < length; ++j)
      for (int64_t k = 0; k < 4; ++k) dst[(i + k) * dstStride + j] = src[j * srcStride + i + k];
  }
#endif
  for (; i < iEnd; ++i) {
    float* out = dst + i * dstStride;
    for (int64_t j = 0; j < length; ++j) out[j] = src[j * srcStride + i];
  }
}

#ifdef SEGKIT_X86
/** dst[(i + r) * dstStride + j + c] = src[(j + c) * srcStride + i + r] for r, c < 8: one 8 x 8 AVX transpose. */
__attribute__((target("avx"), always_inline)) inline void transpose8x8(const float* src, int64_t srcStride, float* dst,
                                                                      int64_t dstStride, int64_t i, int64_t j) {
  const float* in = src + j * srcStride + i;
  const __m256 r0 = _mm256_loadu_ps(in), r1 = _mm256_loadu_ps(in + srcStride);
  const __m256 r2 = _mm256_loadu_ps(in + 2 * srcStride), r3 = _mm256_loadu_ps(in + 3 * srcStride);
  const __m256 r4 = _mm256_loadu_ps(in + 4 * srcStride), r5 = _mm256_loadu_ps(in + 5 * srcStride);
  const __m256 r6 = _mm256_loadu_ps(in + 6 * srcStride), r7 = _mm256_loadu_ps(in + 7 * srcStride);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  float* out = dst + i * dstStride + j;
  _mm256_storeu_ps(out, _mm256_permute2f128_ps(s0, s4, 0x20));
  _mm256_storeu_ps(out + dstStride, _mm256_permute2f128_ps(s1, s5, 0x20));
  _mm256_storeu_ps(out + 2 * dstStride, _mm256_permute2f128_ps(s2, s6, 0x20));
  _mm256_storeu_ps(out + 3 * dstStride, _mm256_permute2f128_ps(s3, s7, 0x20));
  _mm256_storeu_ps(out + 4 * dstStride, _mm256_permute2f128_ps(s0, s4, 0x31));
  _mm256_storeu_ps(out + 5 * dstStride, _mm256_permute2f128_ps(s1, s5, 0x31));
  _mm256_storeu_ps(out + 6 * dstStride, _mm256_permute2f128_ps(s2, s6, 0x31));
  _mm256_storeu_ps(out + 7 * dstStride, _mm256_permute2f128_ps(s3, s7, 0x31));
}

/**
 * copyTransposed through 8 x 8 AVX transposes, half the loads and stores per float of the SSE blocks,
 * 16 source rows (j) at a time, each read to its end: 16 sequential streams the prefetcher follows,
 * each 64-byte destination line written whole. A deep layer's grad-input packs its flipped filter so, from
 * runs 2-4 KB apart (2-core AVX-512 EPYC, b4 4x4 512->1024: 3.35 -> 2.6 ms; 8x8 512->512 4.2 -> 3.9;
 * the SSE blocks, 16 runs deep and every run's line in turn, were 31 % of the former in perf).
 */
__attribute__((target("avx"))) void copyTransposedAvx(const float* src, int64_t srcStride, float* dst, int64_t dstStride,
                                                      int64_t runs, int64_t length) {
  const int64_t wholeRuns = runs / 8 * 8;
  int64_t j = 0;
  for (; j + 16 <= length; j += 16) {
    for (int64_t i = 0; i < wholeRuns; i += 8) {
      transpose8x8(src, srcStride, dst, dstStride, i, j);
      transpose8x8(src, srcStride, dst, dstStride, i, j + 8);
    }
  }
  for (; j + 8 <= length; j += 8)
    for (int64_t i = 0; i < wholeRuns; i += 8) transpose8x8(src, srcStride, dst, dstStride, i, j);
  if (j < length) copyTransposedRuns(src + j * srcStride, srcStride, dst + j, dstStride, 0, wholeRuns, length - j);
  if (wholeRuns < runs) copyTransposedRuns(src, srcStride, dst, dstStride, wholeRuns, runs, length);
}
#endif

}  // namespace

void copyTransposed(const float* src, int64_t srcStride, float* dst, int64_t dstStride, int64_t runs, int64_t length) {
#ifdef SEGKIT_X86
  // The AVX transposes on the AVX paths (a forced portable one stays on x86-64's baseline), for copies
  // 16 or more long: the Winograd transforms' and A panels' copies (8 or 12 long, many
  // small calls) were up to 10 % slower through them (b4 64x64 64->64 forward).
  if (activeIsa() != Isa::Portable && length >= 16 && runs >= 8) {
    copyTransposedAvx(src, srcStride, dst, dstStride, runs, length);
    return;
  }
#endif
  for (int64_t i0 = 0; i0 < runs; i0 += 16)  // 16 runs at a time: the lines read stay in L1
    copyTransposedRuns(src, srcStride, dst, dstStride, i0, std::min(runs, i0 + 16), length);
}

void StridedView::copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                           int64_t dstColStride) const {
  const float* origin = data_ + row0 * rowStride_ + col0 * colStride_;
  // Packing runs over the operands' contiguous runs: copies where source and destination runs line
  // up (B slivers of a row-major matrix, A panels of a column-major one), and for the transposing
  // copies, blocks of 16 runs so the lines read stay in L1 while the writes go in order. (The general
  // strided loop below cost 5 cycles an element: a quarter of a long-K GEMM's time.)
  if (colStride_ == 1 && dstColStride == 1) {
    copyRuns(origin, rowStride_, dst, dstRowStride, rows, cols);
    return;
  }
  if (rowStride_ == 1 && dstRowStride == 1) {
    copyRuns(origin, colStride_, dst, dstColStride, cols, rows);
    return;
  }
  if (colStride_ == 1 && dstRowStride == 1) {  // row-major source, column-major destination (A panels)
    copyTransposed(origin, rowStride_, dst, dstColStride, cols, rows);
    return;
  }
  if (rowStride_ == 1 && dstColStride == 1) {  // column-major source, row-major destination (B slivers)
    copyTransposed(origin, colStride_, dst, dstRowStride, rows, cols);
    return;
  }
  if (colStride_ == 1 || rowStride_ != 1) {
    // Walk along source rows (contiguous when colStride == 1).
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = origin + r * rowStride_;
      float* out = dst + r * dstRowStride;
      for (int64_t col = 0; col < cols; ++col) out[col * dstColStride] = src[col * colStride_];
    }
  } else {
    // Column-major source (a transposed operand): walk along its contiguous columns.
    for (int64_t col = 0; col < cols; ++col) {
      const float* src = origin + col * colStride_;
      float* out = dst + col * dstColStride;
      for (int64_t r = 0; r < rows; ++r) out[r * dstRowStride] = src[r];
    }
  }
}

void gemm(const MatrixView& a, const MatrixView& b, OutputMatrix c, int64_t m, int64_t n, int64_t k, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) {
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) c.data[i * c.rowStride + j * c.colStride] = 0.0f;
    }
    return;
  }
  const KernelSpec& spec = tileFor(a, b, m, n);
  const int64_t threads = numThreads();
  if (threads == 1 || m * n * k < kParallelThreshold) {
    gemmBlock(spec, a, b, c, 0, m, 0, n, k, accumulate);
    return;
  }
  // A reduction of many KC steps into a C whose partials, one per thread, fit the workspace cache:
  // split k (b2 128x128 32->32 filter gradient, 2-core AVX-512 EPYC: 3.8 -> 2.6 ms).
  if (k >= threads * kMinSplitSteps * spec.kc && threads * m * n <= kMaxSplitPartialFloats) {
    gemmSplittingK(spec, a, b, c, m, n, k, accumulate, threads);
    return;
  }
  // Share B and split rows unless C has too few rows for a few MC-high chunks per thread.
  if (m >= 2 * threads * spec.mc || m >= n)
    gemmSharingB(spec, a, b, c, m, n, k, accumulate, threads);
  else
    gemmSharingA(spec, a, b, c, m, n, k, accumulate, threads);
}

void gemmOnThisThread(const MatrixView& a, const MatrixView& b, OutputMatrix c, int64_t m, int64_t n, int64_t k,
                      bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    gemm(a, b, c, m, n, k, accumulate);  // the zero fill
    return;
  }
  gemmBlock(*activeSpec(), a, b, c, 0, m, 0, n, k, accumulate);
}

void directConvolutionRow(const float* in, const int64_t* tapOffsets, int64_t taps, int64_t channels, const float* filter,
                          int64_t outC, float* out, int64_t pixels, bool rowsOf3) {
  activeSpec()->directConvRow(in, tapOffsets, taps, channels, filter, outC, out, pixels, rowsOf3);
}

void directFilterGradientRows(const float* in, int64_t channels, int64_t inRowStride, int64_t inW, int64_t padLeft,
                              const float* dy, int64_t outC, int64_t dyRowStride, int64_t rows, int64_t pixels, float* dW,
                              int64_t tapStride) {
  activeSpec()->directFilterGradientRows(in, channels, inRowStride, inW, padLeft, dy, outC, dyRowStride, rows, pixels, dW,
                                         tapStride);
}

int64_t microKernelRows() { return activeSpec()->mr; }
int64_t microKernelCols() { return activeSpec()->nr; }
int64_t microKernelLanes() { return activeSpec()->lanes; }

const char* microKernelName() { return activeSpec()->name; }

bool selectMicroKernel(const char* name) {
  const KernelSpec* spec = findKernel(name);
  if (spec) activeSpec() = spec;
  return spec != nullptr;
}

Isa activeIsa() {
#ifdef SEGKIT_X86
  const KernelSpec* spec = activeSpec();
  if (spec == &kAvx512) return Isa::Avx512;
  if (spec == &kAvx2) return Isa::Avx2Fma;
#endif
  return Isa::Portable;
}

std::vector<std::string> availableMicroKernels() {
  std::vector<std::string> names;
  for (const KernelSpec* spec : availableKernels()) names.push_back(spec->name);
  return names;
}

}  // namespace segkit
