// The register-tile micro-kernel of the GEMM, written once for every vector ISA. gemm.cc includes
// this file inside one namespace per ISA, each compiled for its instruction set (target pragma),
// after defining there:
//   struct Vec { using Type; static Type zero(); load(const float*) (aligned), loadu, storeu,
//                broadcast(const float*), fmadd(a, b, c) = a*b+c, add(a, b) };
//   constexpr int64_t kRows;     // MR: rows of the C tile (one broadcast of A each)
//   constexpr int64_t kVectors;  // NR / lanes: vectors per row of the C tile (loads of B)
// Every ISA's kernel is this code, so the tests of one (random shapes against a float64 reference)
// cover the arithmetic of all; only Vec differs.
// No include guard: included once per ISA namespace.

constexpr int64_t kCols = kVectors * Vec::kLanes;

// c[kRows x kCols] (row stride ldc) = (accumulate ? c : 0) + packedA * B over kc steps; a holds kRows
// floats per step; B's kVectors vectors of step p are at bVectors[j] + p * ldb (64-byte aligned
// when kAlignedB).
template <bool kAlignedB>
inline void microKernelOver(int64_t kc, const float* a, const float* const* bVectors, int64_t ldb, float* c,
                            int64_t ldc, bool accumulate) {
  typename Vec::Type acc[kRows][kVectors];
  const float* b[kVectors];
#pragma GCC unroll 8
  for (int64_t j = 0; j < kVectors; ++j) b[j] = bVectors[j];
#pragma GCC unroll 32
  for (int64_t i = 0; i < kRows; ++i)
#pragma GCC unroll 8
    for (int64_t j = 0; j < kVectors; ++j) acc[i][j] = Vec::zero();
  for (int64_t p = 0; p < kc; ++p) {
    typename Vec::Type bv[kVectors];
#pragma GCC unroll 8
    for (int64_t j = 0; j < kVectors; ++j) {
      bv[j] = kAlignedB ? Vec::load(b[j]) : Vec::loadu(b[j]);
      b[j] += ldb;
    }
#pragma GCC unroll 32
    for (int64_t i = 0; i < kRows; ++i) {
      const typename Vec::Type ai = Vec::broadcast(a + i);
#pragma GCC unroll 8
      for (int64_t j = 0; j < kVectors; ++j) acc[i][j] = Vec::fmadd(ai, bv[j], acc[i][j]);
    }
    a += kRows;
  }
#pragma GCC unroll 32
  for (int64_t i = 0; i < kRows; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 8
    for (int64_t j = 0; j < kVectors; ++j) {
      typename Vec::Type value = acc[i][j];
      if (accumulate) value = Vec::add(value, Vec::loadu(ci + j * Vec::kLanes));
      Vec::storeu(ci + j * Vec::kLanes, value);
    }
  }
}

// The GEMM's kernel: B packed, kCols floats per step (64-byte aligned).
inline void microKernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  const float* bVectors[kVectors];
#pragma GCC unroll 8
  for (int64_t j = 0; j < kVectors; ++j) bVectors[j] = b + j * Vec::kLanes;
  microKernelOver<true>(kc, a, bVectors, kCols, c, ldc, accumulate);
}

// B read in place: vectors of kLanes columns anywhere in memory, each row ldb floats after the last.
inline void microKernelInPlaceB(int64_t kc, const float* a, const float* const* bVectors, int64_t ldb, float* c,
                                int64_t ldc, bool accumulate) {
  microKernelOver<false>(kc, a, bVectors, ldb, c, ldc, accumulate);
}
