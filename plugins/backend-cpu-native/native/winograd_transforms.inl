// Winograd's tile transforms on blocks of kChannelBlock channels, written once for every vector ISA:
// winograd.cc includes this file inside one namespace per ISA, compiled for that instruction set
// (target pragma), so the channel loops vectorise to its width. No include guard: included once per ISA.

// out[i][j][c] = sum_k m[i][k] * in[k][j][c]; in is [K][N][block], out [R][N][block]. Fully unrolled
// over the constant matrix, so its zero entries cost nothing.
template <int R, int K, int N>
inline void multiplyLeft(const float (&m)[R][K], const float* in, float* out) {
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
      for (int c = 0; c < kChannelBlock; ++c) out[(i * N + j) * kChannelBlock + c] = acc[c];
    }
}

// out[i][j][c] = sum_k in[i][k][c] * m[j][k]; in is [N][K][block], out [N][R][block].
template <int R, int K, int N>
inline void multiplyRightTransposed(const float (&m)[R][K], const float* in, float* out) {
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
      for (int c = 0; c < kChannelBlock; ++c) out[(i * R + j) * kChannelBlock + c] = acc[c];
    }
}

// B^T d B: the alpha x alpha input patch [alpha][alpha][block] to its transform.
template <int M>
void inputTile(const float* patch, float* out) {
  constexpr int A = Transforms<M>::kAlpha;
  alignas(64) float half[A * A * kChannelBlock];
  multiplyLeft<A, A, A>(Transforms<M>::BT, patch, half);
  multiplyRightTransposed<A, A, A>(Transforms<M>::BT, half, out);
}

// G g G^T: the 3 x 3 taps [3][3][block] to alpha x alpha.
template <int M>
void filterTile(const float* taps, float* out) {
  constexpr int A = Transforms<M>::kAlpha;
  alignas(64) float half[A * 3 * kChannelBlock];
  multiplyLeft<A, 3, 3>(Transforms<M>::G, taps, half);
  multiplyRightTransposed<A, 3, A>(Transforms<M>::G, half, out);
}

// A^T m A: the alpha x alpha products to the M x M output pixels.
template <int M>
void outputTile(const float* products, float* out) {
  constexpr int A = Transforms<M>::kAlpha;
  alignas(64) float half[M * A * kChannelBlock];
  multiplyLeft<M, A, A>(Transforms<M>::AT, products, half);
  multiplyRightTransposed<M, A, M>(Transforms<M>::AT, half, out);
}

// A dy A^T: an M x M block of output gradients [M][M][block] to alpha x alpha (the filter
// gradient's transform of dy; A is the output transform transposed).
template <int M>
void outputGradientTile(const float* dy, float* out) {
  constexpr int A = Transforms<M>::kAlpha;
  alignas(64) float half[A * M * kChannelBlock];
  multiplyLeft<A, M, M>(kOutputTransformTransposed<M>.m, dy, half);
  multiplyRightTransposed<A, M, A>(kOutputTransformTransposed<M>.m, half, out);
}

// G^T s G: the alpha x alpha sums of products to the 3 x 3 filter gradient.
template <int M>
void filterGradientTile(const float* sums, float* out) {
  constexpr int A = Transforms<M>::kAlpha;
  alignas(64) float half[3 * A * kChannelBlock];
  multiplyLeft<3, A, A>(kFilterTransformTransposed<M>.m, sums, half);
  multiplyRightTransposed<3, A, 3>(kFilterTransformTransposed<M>.m, half, out);
}

template <int M>
TileTransforms tileTransforms() {
  return TileTransforms{&inputTile<M>, &filterTile<M>, &outputTile<M>, &outputGradientTile<M>, &filterGradientTile<M>};
}
