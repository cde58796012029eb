#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SEGKIT_X86 1
#endif

namespace segkit {
namespace {

// Register tile: 6 rows x 16 columns = 12 AVX accumulators, leaving registers for 2 B vectors and
// an A broadcast. Both micro-kernels share the tile so the packing is the same.
constexpr int64_t MR = 6;
constexpr int64_t NR = 16;
// Cache blocking (tuned on Zen: 32 KiB L1d, 512 KiB L2 per core): a KC x NR sliver of B (32 KiB)
// streams through L1, an MC x KC block of A (144 KiB) stays in L2, a KC x NC panel of B in L3. A long
// KC amortises loading and storing the C tile.
constexpr int64_t KC = 512;
constexpr int64_t MC = 72;
constexpr int64_t NC = 3072;
// Below this many multiply-adds a GEMM runs on one thread: waking the pool costs more.
constexpr int64_t kParallelThreshold = 1 << 17;

// c[MR x NR] (row stride ldc) = (accumulate ? c : 0) + packedA * packedB over kc steps.
using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);

void microKernelPortable(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int64_t i = 0; i < MR; ++i) {
      const float ai = a[p * MR + i];
      for (int64_t j = 0; j < NR; ++j) acc[i][j] += ai * b[p * NR + j];
    }
  }
  for (int64_t i = 0; i < MR; ++i) {
    for (int64_t j = 0; j < NR; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
  }
}

#ifdef SEGKIT_X86
__attribute__((target("avx2,fma"))) void microKernelAvx2(int64_t kc, const float* a, const float* b, float* c,
                                                           int64_t ldc, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    __m256 ai = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00);
    c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10);
    c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20);
    c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30);
    c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40);
    c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50);
    c51 = _mm256_fmadd_ps(ai, b1, c51);
    a += MR;
    b += NR;
  }
  const __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int64_t i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m256 lo = rows[i][0], hi = rows[i][1];
    if (accumulate) {
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(ci));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(ci + 8));
    }
    _mm256_storeu_ps(ci, lo);
    _mm256_storeu_ps(ci + 8, hi);
  }
}

bool cpuHasAvx2Fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#endif

struct KernelChoice {
  MicroKernel kernel;
  const char* name;
};

KernelChoice& activeKernel() {
#ifdef SEGKIT_X86
  static KernelChoice choice = cpuHasAvx2Fma() ? KernelChoice{microKernelAvx2, "avx2-fma"}
                                               : KernelChoice{microKernelPortable, "portable"};
#else
  static KernelChoice choice = {microKernelPortable, "portable"};
#endif
  return choice;
}

// Packing buffers, one set per thread, 64-byte aligned for the micro-kernel's aligned loads.
struct PackBuffers {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> a{static_cast<float*>(std::aligned_alloc(64, sizeof(float) * MC * KC))};
  std::unique_ptr<float, Free> b{static_cast<float*>(std::aligned_alloc(64, sizeof(float) * NC * KC))};
};

PackBuffers& threadPackBuffers() {
  thread_local PackBuffers buffers;
  return buffers;
}

// Serial GEMM on the sub-rectangle rows [rowBegin, rowEnd) x cols [colBegin, colEnd) of C.
void gemmBlock(const MatrixView& a, const MatrixView& b, OutputMatrix c, int64_t rowBegin, int64_t rowEnd,
               int64_t colBegin, int64_t colEnd, int64_t k, bool accumulate) {
  const MicroKernel kernel = activeKernel().kernel;
  PackBuffers& buffers = threadPackBuffers();
  float* packedA = buffers.a.get();
  float* packedB = buffers.b.get();
  alignas(32) float edgeTile[MR * NR];

  for (int64_t jc = colBegin; jc < colEnd; jc += NC) {
    const int64_t nc = std::min(NC, colEnd - jc);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      for (int64_t jr = 0; jr < nc; jr += NR) {
        const int64_t nr = std::min(NR, nc - jr);
        float* dst = packedB + jr * kc;
        if (nr < NR) std::memset(dst, 0, sizeof(float) * kc * NR);
        b.copyTile(pc, kc, jc + jr, nr, dst, NR, 1);
      }
      const bool accumulateBlock = accumulate || pc > 0;
      for (int64_t ic = rowBegin; ic < rowEnd; ic += MC) {
        const int64_t mc = std::min(MC, rowEnd - ic);
        for (int64_t ir = 0; ir < mc; ir += MR) {
          const int64_t mr = std::min(MR, mc - ir);
          float* dst = packedA + ir * kc;
          if (mr < MR) std::memset(dst, 0, sizeof(float) * kc * MR);
          a.copyTile(ic + ir, mr, pc, kc, dst, 1, MR);
        }
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t nr = std::min(NR, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t mr = std::min(MR, mc - ir);
            float* cTile = c.data + (ic + ir) * c.rowStride + (jc + jr) * c.colStride;
            if (mr == MR && nr == NR && c.colStride == 1) {
              kernel(kc, packedA + ir * kc, packedB + jr * kc, cTile, c.rowStride, accumulateBlock);
              continue;
            }
            // Partial or column-strided tile: compute into a scratch tile, then merge.
            kernel(kc, packedA + ir * kc, packedB + jr * kc, edgeTile, NR, false);
            for (int64_t i = 0; i < mr; ++i) {
              for (int64_t j = 0; j < nr; ++j) {
                float& out = cTile[i * c.rowStride + j * c.colStride];
                out = accumulateBlock ? out + edgeTile[i * NR + j] : edgeTile[i * NR + j];
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace

void StridedView::copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                           int64_t dstColStride) const {
  const float* origin = data_ + row0 * rowStride_ + col0 * colStride_;
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
  const int64_t threads = numThreads();
  if (threads == 1 || m * n * k < kParallelThreshold) {
    gemmBlock(a, b, c, 0, m, 0, n, k, accumulate);
    return;
  }
  // Split the larger output dimension into slabs (aligned to the register tile), a few per thread
  // so a thread slowed down by another process does not hold up the rest; each slab packs the
  // shared operand itself, which costs k*n (or m*k) next to the slab's own m*n*k/slabs.
  const bool splitRows = m >= n;
  const int64_t extent = splitRows ? m : n;
  const int64_t align = splitRows ? MR : NR;
  const int64_t minSlab = splitRows ? MC : 4 * NR;
  const int64_t wantedSlabs = std::max<int64_t>(1, std::min<int64_t>(threads * 4, extent / minSlab));
  const int64_t slabsAtLeast = std::max<int64_t>(std::min<int64_t>(threads, (extent + align - 1) / align), wantedSlabs);
  const int64_t slab = ((extent + slabsAtLeast - 1) / slabsAtLeast + align - 1) / align * align;
  const int64_t slabs = (extent + slab - 1) / slab;
  parallelFor(slabs, [&](int64_t s) {
    const int64_t begin = s * slab;
    const int64_t end = std::min(extent, begin + slab);
    if (splitRows)
      gemmBlock(a, b, c, begin, end, 0, n, k, accumulate);
    else
      gemmBlock(a, b, c, 0, m, begin, end, k, accumulate);
  });
}

const char* microKernelName() { return activeKernel().name; }

bool selectMicroKernel(const char* name) {
  if (std::strcmp(name, "portable") == 0) {
    activeKernel() = {microKernelPortable, "portable"};
    return true;
  }
#ifdef SEGKIT_X86
  if (std::strcmp(name, "avx2-fma") == 0 && cpuHasAvx2Fma()) {
    activeKernel() = {microKernelAvx2, "avx2-fma"};
    return true;
  }
#endif
  return false;
}

}  // namespace segkit
