// One instruction-set decision for every kernel of the addon: the GEMM's (gemm.cc: CPUID's best, or
// SEGKIT_NATIVE_ISA / selectMicroKernel forcing a lower path), so forcing a path moves all kernels onto it.
//
// Element-wise loops are written once, as a lambda marked SEGKIT_ALWAYS_INLINE, and run through
// runWithIsa(loop, args...): it calls the loop from a function compiled for the active ISA, into which
// the loop is inlined and auto-vectorised for that target (zmm / ymm / the baseline's xmm). No
// AVX instruction runs outside those functions, so the addon loads on any x86-64 (no global -march).
// With -ffp-contract=off (binding.gyp) the copies do the same float operations in the same order, so
// every ISA path gives bitwise the results of the portable one.
#pragma once

#include <cstdint>
#include <cstring>

namespace segkit {

enum class Isa { Portable, Avx2Fma, Avx512 };

/** The ISA the kernels run on now (defined in gemm.cc beside the micro-kernel selection). */
Isa activeIsa();

#if defined(__GNUC__)
#define SEGKIT_ALWAYS_INLINE __attribute__((always_inline))
#else
#define SEGKIT_ALWAYS_INLINE
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SEGKIT_ISA_DISPATCH 1
namespace isa_detail {
template <typename Loop, typename... Args>
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma"))) void runAvx512(const Loop& loop, Args... args) {
  loop(args...);
}
template <typename Loop, typename... Args>
__attribute__((target("avx2,fma"))) void runAvx2(const Loop& loop, Args... args) {
  loop(args...);
}
}  // namespace isa_detail
#endif

/** loop(args...) compiled for the active ISA (see above); loop must be SEGKIT_ALWAYS_INLINE. */
template <typename Loop, typename... Args>
inline void runWithIsa(const Loop& loop, Args... args) {
#ifdef SEGKIT_ISA_DISPATCH
  switch (activeIsa()) {
    case Isa::Avx512:
      return isa_detail::runAvx512(loop, args...);
    case Isa::Avx2Fma:
      return isa_detail::runAvx2(loop, args...);
    case Isa::Portable:
      break;
  }
#endif
  loop(args...);
}

/**
 * keep ? value : +0 by a bit mask. GCC if-converts (and so vectorises) a select whose condition and value
 * differ in width or type (a float compare selecting into a double sum, an int compare selecting a float)
 * only in this form, on every ISA.
 */
SEGKIT_ALWAYS_INLINE inline float valueOrZero(bool keep, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  bits &= keep ? 0xffffffffu : 0u;
  float result;
  std::memcpy(&result, &bits, sizeof(result));
  return result;
}

/** A callable running loop(args...) through runWithIsa: for parallelRanges / forEachImageChannelSlice bodies. */
template <typename Loop>
auto withIsa(const Loop& loop) {
  return [&loop](auto... args) { runWithIsa(loop, args...); };
}

}  // namespace segkit
