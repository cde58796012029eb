// The addon's kernels on NHWC float32 data: convolutions, pooling, resize, element-wise ops and
// reductions. Filters are HWIO ([kh, kw, in, out]) like tfjs; depthwise filters are
// [kh, kw, channels, multiplier]. Outputs are written in full (callers may pass any buffer).
#pragma once

#include <cstdint>
#include <vector>

namespace segkit {

/** One 2-D window geometry, shared by convolutions and pooling (tfjs's Conv2DInfo, flattened). */
struct WindowGeometry {
  int64_t batch, inH, inW, inC;
  int64_t outH, outW, outC;
  int64_t kH, kW;
  int64_t strideH, strideW;
  int64_t dilH, dilW;
  int64_t padTop, padLeft;
};

enum class Activation { Linear = 0, Relu = 1, Relu6 = 2, LeakyRelu = 3, Elu = 4, Sigmoid = 5 };

void conv2d(const float* x, const float* filter, float* out, const WindowGeometry& g);
void conv2dBackpropInput(const float* dy, const float* filter, float* dx, const WindowGeometry& g);
void conv2dBackpropFilter(const float* x, const float* dy, float* dFilter, const WindowGeometry& g);

void depthwiseConv2d(const float* x, const float* filter, float* out, const WindowGeometry& g);
void depthwiseConv2dBackpropInput(const float* dy, const float* filter, float* dx, const WindowGeometry& g);
void depthwiseConv2dBackpropFilter(const float* x, const float* dy, float* dFilter, const WindowGeometry& g);

/** In place over rows x channels: out = act(out + bias[channel]); bias may be null. */
void biasActivation(float* out, int64_t rows, int64_t channels, const float* bias, Activation activation, float alpha);

void maxPool(const float* x, float* out, const WindowGeometry& g);
void maxPoolGrad(const float* dy, const float* x, float* dx, const WindowGeometry& g);
void avgPool(const float* x, float* out, const WindowGeometry& g);
void avgPoolGrad(const float* dy, float* dx, const WindowGeometry& g);

/** Geometry is batch, inH, inW, channels, outH, outW (the other fields unused). */
void resizeBilinear(const float* x, float* out, const WindowGeometry& g, bool alignCorners, bool halfPixelCenters);
void resizeBilinearGrad(const float* dy, float* dx, const WindowGeometry& g, bool alignCorners, bool halfPixelCenters);

enum class BinaryOp { Add = 0, Sub = 1, Mul = 2, Div = 3, SquaredDifference = 4, Maximum = 5, Minimum = 6 };
enum class ReduceOp { Sum = 0, Mean = 1, Max = 2, Min = 3 };

/** out = a op b with numpy broadcasting; outShape is the broadcast shape. */
void binaryBroadcast(BinaryOp op, const float* a, const std::vector<int64_t>& aShape, const float* b,
                     const std::vector<int64_t>& bShape, float* out, const std::vector<int64_t>& outShape);

enum class UnaryOp {
  Relu = 0, Relu6 = 1, Step = 2, Exp = 3, Log = 4, Neg = 5, Square = 6, Sqrt = 7, Rsqrt = 8, Sigmoid = 9, Tanh = 10,
  Abs = 11, Reciprocal = 12
};

/** out[i] = op(x[i]); alpha is Step's value for x <= 0. */
void unary(UnaryOp op, const float* x, float* out, int64_t n, float alpha);

/** Per-channel affine over rows x channels: out = (x - mean[c]) * scale[c] + offset[c]. */
void batchNorm(const float* x, float* out, int64_t rows, int64_t channels, const float* mean, const float* scale,
               const float* offset);

/** Per-channel mean and biased variance over the rows of x [rows, channels] (double accumulation). */
void batchMoments(const float* x, int64_t rows, int64_t channels, float* mean, float* variance);

/**
 * Training-mode batch norm in one call: the batch's mean and biased variance (as batchMoments), then
 * out = (x - mean) * multiplier + offset with multiplier = scale / sqrt(variance + epsilon) (in double,
 * rounded to float), and max(out, 0) when relu. scale / offset may be null (1 / 0).
 */
void batchNormTrain(const float* x, int64_t rows, int64_t channels, const float* scale, const float* offset, double epsilon,
                    bool relu, float* out, float* mean, float* variance);

/**
 * Gradient of relu(batchNormTrain(x)): batchNormGrad with dy zeroed where the forward's pre-activation
 * (recomputed exactly as batchNormTrain computes it) was not positive, as relu's gradient does.
 */
void batchNormReluGrad(const float* x, const float* dy, int64_t rows, int64_t channels, const float* scale,
                       const float* offset, double epsilon, float* dx, float* dScale, float* dOffset);

/**
 * Gradient of training-mode batch norm y = (x - mean) / sqrt(var + eps) * scale + offset with the
 * batch's own statistics over the rows of [rows, channels]: dx, dScale, dOffset (scale may be null: 1).
 */
void batchNormGrad(const float* x, const float* dy, int64_t rows, int64_t channels, const float* scale, float epsilon,
                   float* dx, float* dScale, float* dOffset);

/** rows runs of run floats: dst[r * dstStride + i] = src[r * srcStride + i] (rows split over threads). */
void copyRows(const float* src, int64_t srcStride, float* dst, int64_t dstStride, int64_t rows, int64_t run);

/** Softmax over the last axis of x [rows, columns]. */
void softmax(const float* x, float* out, int64_t rows, int64_t columns);

/**
 * The k largest values of each row of x [rows, size] into values / indices [rows, k], sorted
 * descending, equal values by lower index first (tfjs's order); false if x holds a NaN (whose order
 * tfjs's comparator decides), the outputs then unspecified.
 */
bool topK(const float* x, int64_t rows, int64_t size, int64_t k, float* values, int32_t* indices);

struct SgdHyperparameters {
  float lr, momentum, dampening, weightDecay;
  bool nesterov;
};

/**
 * One SGD step (PyTorch's semantics) over n elements into fresh arrays: newBuffer only when momentum
 * is non-zero; buffer null on the first step (the buffer starts as the decayed gradient).
 */
void sgdUpdate(const float* param, const float* grad, const float* buffer, int64_t n, const SgdHyperparameters& h,
               float* newParam, float* newBuffer);

struct AdamHyperparameters {
  float lr, beta1, beta2, eps, weightDecay;
  bool decoupled;  // AdamW: p <- p * (1 - lr * wd) before the step; else wd * p joins the gradient
  int64_t step;    // this parameter's step count, from 1
};

/**
 * One Adam/AdamW step (PyTorch's semantics, the float32 rounding of segkit's element-wise version):
 * expAvg / expAvgSq null on the first step (zeros); maxExpAvgSq non-null only with amsgrad (null
 * on its first step too, then newMax = v). Outputs may alias their own inputs (an in-place step).
 */
void adamUpdate(const float* param, const float* grad, const float* expAvg, const float* expAvgSq, const float* maxExpAvgSq,
                int64_t n, const AdamHyperparameters& h, bool amsgrad, float* newParam, float* newExpAvg,
                float* newExpAvgSq, float* newMax);

/** x viewed as [outer, size, inner] reduced over the middle axis into out[outer, inner]. */
void reduce(ReduceOp op, const float* x, float* out, int64_t outer, int64_t size, int64_t inner);

}  // namespace segkit
