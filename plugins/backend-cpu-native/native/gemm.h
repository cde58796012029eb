// Packed, cache-blocked single-precision GEMM (BLIS-style loop nest) whose operands are abstract
// matrix views, so a convolution's im2col matrix is packed straight from the image and never
// materialised. Every convolution and matmul kernel in the addon goes through gemm().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace segkit {

/** A read-only matrix that can copy any tile of itself into a strided destination. */
class MatrixView {
 public:
  virtual ~MatrixView() = default;
  /** dst[r * dstRowStride + c * dstColStride] = this(row0 + r, col0 + c) for r < rows, c < cols. */
  virtual void copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                        int64_t dstColStride) const = 0;
  /**
   * For a view already stored in the GEMM's packed layout, which the GEMM then reads in place: as
   * operand A, the panel of `mr` rows from row0 whose column col0.. values follow one another (mr
   * floats per column); as operand B, the sliver of `nr` columns from col0 whose rows row0.. follow
   * one another (nr floats per row, 64-byte aligned). Rows / columns past the matrix read as zero.
   * nullptr (the default) when not stored so, or not for this tile width.
   */
  virtual const float* packedPanel(int64_t /*row0*/, int64_t /*col0*/, int64_t /*mr*/) const { return nullptr; }
  virtual const float* packedSliver(int64_t /*row0*/, int64_t /*col0*/, int64_t /*nr*/) const { return nullptr; }
  /**
   * For a B operand the micro-kernel can read without packing: the `lanes` columns col0.. (col0 a
   * multiple of lanes) of row `row`, contiguous in memory, each next row vectorRowStride() floats
   * further on, for every row of the matrix. nullptr (the default) when not stored so.
   */
  virtual const float* columnVector(int64_t /*row*/, int64_t /*col0*/, int64_t /*lanes*/) const { return nullptr; }
  virtual int64_t vectorRowStride() const { return 0; }
};

/** A dense matrix in memory with arbitrary element strides (covers row-major and transposed). */
class StridedView final : public MatrixView {
 public:
  StridedView(const float* data, int64_t rowStride, int64_t colStride)
      : data_(data), rowStride_(rowStride), colStride_(colStride) {}
  void copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                int64_t dstColStride) const override;

 private:
  const float* data_;
  int64_t rowStride_, colStride_;
};

/**
 * A row-major matrix that the GEMM's micro-kernel reads in place as its B operand (MatrixView::
 * columnVector) instead of packing it: for a B reused by few rows of A, which packing would copy
 * for little use (a deep layer's filter on a small map: 4608 x 512 floats for 256 output pixels).
 */
class InPlaceRowMajorView final : public MatrixView {
 public:
  InPlaceRowMajorView(const float* data, int64_t rowStride) : data_(data), rowStride_(rowStride), strided_(data, rowStride, 1) {}
  void copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                int64_t dstColStride) const override {
    strided_.copyTile(row0, rows, col0, cols, dst, dstRowStride, dstColStride);
  }
  const float* columnVector(int64_t row, int64_t col0, int64_t /*lanes*/) const override { return data_ + row * rowStride_ + col0; }
  int64_t vectorRowStride() const override { return rowStride_; }

 private:
  const float* data_;
  int64_t rowStride_;
  StridedView strided_;
};

/** The transpose of another view, without copying. */
class TransposedView final : public MatrixView {
 public:
  explicit TransposedView(const MatrixView& inner) : inner_(inner) {}
  void copyTile(int64_t row0, int64_t rows, int64_t col0, int64_t cols, float* dst, int64_t dstRowStride,
                int64_t dstColStride) const override {
    inner_.copyTile(col0, cols, row0, rows, dst, dstColStride, dstRowStride);
  }

 private:
  const MatrixView& inner_;
};

/** Destination of a GEMM: element (i, j) lives at data[i * rowStride + j * colStride]. */
struct OutputMatrix {
  float* data;
  int64_t rowStride;
  int64_t colStride;
};

/**
 * dst[i * dstStride + j] = src[j * srcStride + i] for i < runs, j < length: a transposing copy (packing a
 * transposed operand), in blocks that keep the source lines in L1.
 */
void copyTransposed(const float* src, int64_t srcStride, float* dst, int64_t dstStride, int64_t runs, int64_t length);

/** C[m, n] = A[m, k] * B[k, n] (+ C when accumulate). Multi-threaded over the thread pool. */
void gemm(const MatrixView& a, const MatrixView& b, OutputMatrix c, int64_t m, int64_t n, int64_t k, bool accumulate);

/**
 * Direct convolution on the micro-kernel's ISA, for narrow layers: `pixels` consecutive output pixels
 * of one row of a stride-1 window over a zero-padded NHWC image read in place, every output channel.
 * in + tapOffsets[t] is tap t's input for the first pixel (each next pixel `channels` floats on);
 * filter is [taps][channels][outC]; out [pixels][outC]. outC a multiple of microKernelLanes(); the
 * input is read up to a register tile's rows (at most 24) pixels past the last. rowsOf3: the taps come
 * in rows of 3, one pixel apart (an undilated 3-wide window), each input pixel then loaded once per row.
 */
void directConvolutionRow(const float* in, const int64_t* tapOffsets, int64_t taps, int64_t channels, const float* filter,
                          int64_t outC, float* out, int64_t pixels, bool rowsOf3);

/**
 * Filter gradient of a stride-1 window 3 wide, undilated, on the micro-kernel's ISA, for narrow layers:
 * the sums of one filter row over `rows` rows of `pixels` output pixels,
 *   dW[kw * tapStride + c * outC + j] += sum over r, i of x[r][i + kw - padLeft][c] * dy[r * dyRowStride + i * outC + j]
 * for kw < 3, c < channels, j < outC; x[r][w][c] = in[r * inRowStride + w * channels + c] for image
 * columns 0 <= w < inW, zero outside (the padding, never read). outC a multiple of microKernelLanes().
 */
void directFilterGradientRows(const float* in, int64_t channels, int64_t inRowStride, int64_t inW, int64_t padLeft,
                              const float* dy, int64_t outC, int64_t dyRowStride, int64_t rows, int64_t pixels, float* dW,
                              int64_t tapStride);

/**
 * Register tile of the micro-kernel in use (rows of A, columns of B per packed panel): operands stored
 * in the packed layout (panels of mr rows, column by column; slivers of nr columns, row by row) can
 * be copied into the GEMM's packing buffers as whole blocks.
 */
int64_t microKernelRows();
int64_t microKernelCols();
/** Floats per vector of the micro-kernel in use (the width of MatrixView::columnVector). */
int64_t microKernelLanes();

/** gemm on the calling thread only: for callers that already spread many small GEMMs over the pool. */
void gemmOnThisThread(const MatrixView& a, const MatrixView& b, OutputMatrix c, int64_t m, int64_t n, int64_t k,
                      bool accumulate);

/**
 * Name of the micro-kernel in use: "avx512", "avx2-fma" or "portable". By default the fastest this
 * CPU runs (CPUID); the environment variable SEGKIT_NATIVE_ISA (avx512, avx2, portable) forces a lower one.
 */
const char* microKernelName();

/** Forces a micro-kernel ("avx512", "avx2-fma" or "avx2", "portable"); false if this CPU cannot run it. */
bool selectMicroKernel(const char* name);

/** The micro-kernels this CPU can run, fastest first. */
std::vector<std::string> availableMicroKernels();

}  // namespace segkit
