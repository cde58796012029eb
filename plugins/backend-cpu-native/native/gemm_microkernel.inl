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

// The first `rows` of a direct-convolution tile's R pixels into out (row stride outC).
template <int R, int V>
inline void storeDirectTile(const typename Vec::Type (&acc)[R][V], float* out, int64_t outC, int64_t rows) {
  if (rows == R) {
#pragma GCC unroll 32
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < V; ++j) Vec::storeu(out + i * outC + j * Vec::kLanes, acc[i][j]);
    return;
  }
  alignas(64) float tile[R * V * Vec::kLanes];
#pragma GCC unroll 32
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j) Vec::storeu(tile + (i * V + j) * Vec::kLanes, acc[i][j]);
  for (int64_t i = 0; i < rows; ++i)
    std::memcpy(out + i * outC, tile + i * V * Vec::kLanes, sizeof(float) * V * Vec::kLanes);
}

// Direct convolution, for narrow layers: `pixels` consecutive output pixels of one row of a stride-1
// window over a zero-padded NHWC image read in place. in + tapOffsets[t] is tap t's input for the
// first pixel, each next pixel `channels` floats on; filter is [taps][channels][outC]:
//   out[i * outC + j] = sum over t, p of in[tapOffsets[t] + i * channels + p] * filter[(t * channels + p) * outC + j].
// A tile of R pixels x V vectors of output channels: R broadcasts of the input and V loads of the
// filter per R x V multiply-adds. outC a multiple of Vec::kLanes; the input must be readable R - 1
// pixels past the last (a partial tile computes them into a scratch tile).
template <int R, int V>
inline void directConvTile(const float* in, const int64_t* tapOffsets, int64_t taps, int64_t channels,
                           const float* filter, int64_t outC, float* out, int64_t rows) {
  typename Vec::Type acc[R][V];
#pragma GCC unroll 32
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j) acc[i][j] = Vec::zero();
  for (int64_t t = 0; t < taps; ++t) {
    const float* a = in + tapOffsets[t];
    const float* b = filter + t * channels * outC;
    for (int64_t p = 0; p < channels; ++p) {
      typename Vec::Type bv[V];
#pragma GCC unroll 4
      for (int j = 0; j < V; ++j) bv[j] = Vec::loadu(b + p * outC + j * Vec::kLanes);
      const float* pixel = a + p;
#pragma GCC unroll 32
      for (int i = 0; i < R; ++i) {
        const typename Vec::Type ai = Vec::broadcast(pixel);
        pixel += channels;
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) acc[i][j] = Vec::fmadd(ai, bv[j], acc[i][j]);
      }
    }
  }
  storeDirectTile<R, V>(acc, out, outC, rows);
}

// directConvTile for rows of 3 taps one pixel apart (a 3-wide undilated window; tapOffsets[3 r] is
// row r's first): each input pixel is broadcast once per row and channel and feeds the 3 output
// pixels whose taps read it, so a tile of R pixels takes R + 2 broadcasts and 3 V filter loads per
// 3 R V multiply-adds, where tap by tap it took 3 R + 3 V.
template <int R, int V>
inline void directConvTileRowsOf3(const float* in, const int64_t* tapOffsets, int64_t taps, int64_t channels,
                                  const float* filter, int64_t outC, float* out, int64_t rows) {
  typename Vec::Type acc[R][V];
#pragma GCC unroll 32
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j) acc[i][j] = Vec::zero();
  for (int64_t t = 0; t < taps; t += 3) {
    const float* a = in + tapOffsets[t];
    const float* b = filter + t * channels * outC;
    for (int64_t p = 0; p < channels; ++p) {
      typename Vec::Type w[3][V];
#pragma GCC unroll 3
      for (int kw = 0; kw < 3; ++kw)
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) w[kw][j] = Vec::loadu(b + (kw * channels + p) * outC + j * Vec::kLanes);
      const float* pixel = a + p;
#pragma GCC unroll 34
      for (int x = 0; x < R + 2; ++x) {
        const typename Vec::Type value = Vec::broadcast(pixel);
        pixel += channels;
#pragma GCC unroll 3
        for (int kw = 0; kw < 3; ++kw) {
          const int i = x - kw;
          if (i < 0 || i >= R) continue;
#pragma GCC unroll 4
          for (int j = 0; j < V; ++j) acc[i][j] = Vec::fmadd(value, w[kw][j], acc[i][j]);
        }
      }
    }
  }
  storeDirectTile<R, V>(acc, out, outC, rows);
}

// The pixels of one output row, every output channel: tiles of R pixels x V vectors (R1 x 1 vector
// for the last vector when outC is an odd number of vectors); rowsOf3: the window is 3 wide, its taps
// of a row one pixel apart.
template <int R, int V, int R1>
inline void directConvRowWith(const float* in, const int64_t* tapOffsets, int64_t taps, int64_t channels,
                              const float* filter, int64_t outC, float* out, int64_t pixels, bool rowsOf3) {
  constexpr int64_t kWide = V * Vec::kLanes;
  const auto tile = rowsOf3 ? directConvTileRowsOf3<R, V> : directConvTile<R, V>;
  const auto narrowTile = rowsOf3 ? directConvTileRowsOf3<R1, 1> : directConvTile<R1, 1>;
  int64_t j0 = 0;
  for (; j0 + kWide <= outC; j0 += kWide)
    for (int64_t i0 = 0; i0 < pixels; i0 += R)
      tile(in + i0 * channels, tapOffsets, taps, channels, filter + j0, outC, out + i0 * outC + j0, std::min<int64_t>(R, pixels - i0));
  for (; j0 < outC; j0 += Vec::kLanes)
    for (int64_t i0 = 0; i0 < pixels; i0 += R1)
      narrowTile(in + i0 * channels, tapOffsets, taps, channels, filter + j0, outC, out + i0 * outC + j0,
                 std::min<int64_t>(R1, pixels - i0));
}

// This ISA's direct-convolution row (tiles kDirectRows x kDirectVectors, kDirectRowsOneVector x 1).
inline void directConvRow(const float* in, const int64_t* tapOffsets, int64_t taps, int64_t channels,
                          const float* filter, int64_t outC, float* out, int64_t pixels, bool rowsOf3) {
  directConvRowWith<kDirectRows, kDirectVectors, kDirectRowsOneVector>(in, tapOffsets, taps, channels, filter, outC, out,
                                                                        pixels, rowsOf3);
}

// Filter gradient of a stride-1 window 3 wide, undilated, for narrow layers: over `rows` rows of
// `pixels` output pixels, the sums of one filter row's 3 taps for kC input channels and kV vectors of
// output channels,
//   dW[kw * tapStride + c * outC + j] += sum over rows r, pixels i of x[r][i + kw - padLeft][c] * dy[r][i][j],
// x[r][w][c] = in[r * inRowStride + w * channels + c] for image columns 0 <= w < inW (zero outside),
// dy[r][i][j] = dy[r * dyRowStride + i * outC + j]. The 3 kC kV sums stay in registers over the rows.
// Each image pixel is broadcast once per channel and feeds the 3 output pixels whose taps read
// it (padded column x feeds output pixels x, x - 1 and x - 2, whose dy are kept in registers): kC
// broadcasts and kV loads per 3 kC kV multiply-adds, where tap by tap it took 3 kC broadcasts.
template <int kC, int kV>
inline void directFilterGradientTile(const float* in, int64_t channels, int64_t inRowStride, int64_t inW, int64_t padLeft,
                                     const float* dy, int64_t outC, int64_t dyRowStride, int64_t rows, int64_t pixels,
                                     float* dW, int64_t tapStride) {
  using V = typename Vec::Type;
  const int64_t xBegin = std::max<int64_t>(0, padLeft), xEnd = std::min(pixels + 2, padLeft + inW);
  const auto dyAt = [&](const float* dyRow, int64_t i, int j) {
    return i >= 0 && i < pixels ? Vec::loadu(dyRow + i * outC + j * Vec::kLanes) : Vec::zero();
  };
  // This call's rows summed from zero, then added to dW: float32 sums in blocks, as the GEMM's KC steps
  // (summed on from dW over every row, an element of a b4 64x64 layer's gradient drifted 2x further from
  // WebGPU's in the demo's teacher-forced test).
  V acc[3][kC][kV];
#pragma GCC unroll 3
  for (int kw = 0; kw < 3; ++kw)
#pragma GCC unroll 8
    for (int c = 0; c < kC; ++c)
#pragma GCC unroll 4
      for (int j = 0; j < kV; ++j) acc[kw][c][j] = Vec::zero();
  for (int64_t r = 0; r < rows; ++r) {
    const float* inRow = in + r * inRowStride - padLeft * channels;  // at padded column 0
    const float* dyRow = dy + r * dyRowStride;
    V previous[2][kV];  // dy of output pixels x - 1 and x - 2
#pragma GCC unroll 4
    for (int j = 0; j < kV; ++j) previous[0][j] = dyAt(dyRow, xBegin - 1, j), previous[1][j] = dyAt(dyRow, xBegin - 2, j);
    for (int64_t x = xBegin; x < xEnd; ++x) {
      V current[kV];  // dy of output pixel x
#pragma GCC unroll 4
      for (int j = 0; j < kV; ++j) current[j] = dyAt(dyRow, x, j);
#pragma GCC unroll 8
      for (int c = 0; c < kC; ++c) {
        const V value = Vec::broadcast(inRow + x * channels + c);
#pragma GCC unroll 4
        for (int j = 0; j < kV; ++j) {
          acc[0][c][j] = Vec::fmadd(value, current[j], acc[0][c][j]);
          acc[1][c][j] = Vec::fmadd(value, previous[0][j], acc[1][c][j]);
          acc[2][c][j] = Vec::fmadd(value, previous[1][j], acc[2][c][j]);
        }
      }
#pragma GCC unroll 4
      for (int j = 0; j < kV; ++j) previous[1][j] = previous[0][j], previous[0][j] = current[j];
    }
  }
#pragma GCC unroll 3
  for (int kw = 0; kw < 3; ++kw)
#pragma GCC unroll 8
    for (int c = 0; c < kC; ++c)
#pragma GCC unroll 4
      for (int j = 0; j < kV; ++j) {
        float* sum = dW + kw * tapStride + c * outC + j * Vec::kLanes;
        Vec::storeu(sum, Vec::add(Vec::loadu(sum), acc[kw][c][j]));
      }
}

// Channels [c0, channels) in tiles of kC, then one tile of the remaining count (kC down to 1).
template <int kV, int kC>
inline void directFilterGradientChannels(int64_t c0, const float* in, int64_t channels, int64_t inRowStride, int64_t inW,
                                         int64_t padLeft, const float* dy, int64_t outC, int64_t dyRowStride, int64_t rows,
                                         int64_t pixels, float* dW, int64_t tapStride) {
  if constexpr (kC > 0) {
    for (; c0 + kC <= channels; c0 += kC)
      directFilterGradientTile<kC, kV>(in + c0, channels, inRowStride, inW, padLeft, dy, outC, dyRowStride, rows, pixels,
                                       dW + c0 * outC, tapStride);
    directFilterGradientChannels<kV, kC - 1>(c0, in, channels, inRowStride, inW, padLeft, dy, outC, dyRowStride, rows, pixels,
                                             dW, tapStride);
  }
}

// Channels per filter-gradient tile of kV vectors: its 3 kC kV sums, the 3 kV dy vectors and the
// broadcast within the vector registers (AVX-512: 8 x 1, 4 x 2; 16 registers: 4 x 1, 1 x 2).
template <int kV>
constexpr int kGradChannels = std::min(8, (kVectorRegisters - 1 - 3 * kV) / (3 * kV));

// This ISA's filter-gradient rows: every channel and output channel of one filter row, in tiles of
// 2 vectors of output channels (then 1) by kGradChannels channels.
inline void directFilterGradientRows(const float* in, int64_t channels, int64_t inRowStride, int64_t inW, int64_t padLeft,
                                     const float* dy, int64_t outC, int64_t dyRowStride, int64_t rows, int64_t pixels, float* dW,
                                     int64_t tapStride) {
  int64_t j0 = 0;
  for (; j0 + 2 * Vec::kLanes <= outC; j0 += 2 * Vec::kLanes)
    directFilterGradientChannels<2, kGradChannels<2>>(0, in, channels, inRowStride, inW, padLeft, dy + j0, outC, dyRowStride, rows,
                                                      pixels, dW + j0, tapStride);
  for (; j0 < outC; j0 += Vec::kLanes)
    directFilterGradientChannels<1, kGradChannels<1>>(0, in, channels, inRowStride, inW, padLeft, dy + j0, outC, dyRowStride, rows,
                                                      pixels, dW + j0, tapStride);
}
