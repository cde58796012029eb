// Broadcasting binary arithmetic and axis reductions: the element-wise work of a training step
// (batch-norm statistics and their gradients, loss terms), multi-threaded. Every loop runs through
// isa_dispatch.h (compiled for AVX-512 / AVX2 / the baseline, chosen with the GEMM), so each one is a
// SEGKIT_ALWAYS_INLINE lambda that reads its operands into locals before the loop (stores to the float
// outputs then cannot alias them, and the loop vectorises).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "isa_dispatch.h"
#include "ops.h"
#include "thread_pool.h"

namespace segkit {
namespace {

constexpr int64_t kMinGrain = 1 << 14;  // elements per parallel chunk

/**
 * The broadcast as a loop nest: output dims with each operand's element stride (0 where it
 * broadcasts), adjacent dims merged wherever both operands stay linear across them.
 */
struct BroadcastLoops {
  std::vector<int64_t> dims, aStrides, bStrides;
};

BroadcastLoops broadcastLoops(const std::vector<int64_t>& aShape, const std::vector<int64_t>& bShape,
                              const std::vector<int64_t>& outShape) {
  const size_t rank = outShape.size();
  auto stridesFor = [&](const std::vector<int64_t>& shape) {
    std::vector<int64_t> strides(rank, 0);
    int64_t stride = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      const size_t axis = shape.size() - 1 - i;  // align from the right
      const size_t outAxis = rank - 1 - i;
      strides[outAxis] = shape[axis] == 1 ? 0 : stride;
      stride *= shape[axis];
    }
    return strides;
  };
  const std::vector<int64_t> a = stridesFor(aShape), b = stridesFor(bShape);
  BroadcastLoops loops;
  for (size_t i = 0; i < rank; ++i) {
    if (outShape[i] == 1) continue;
    if (!loops.dims.empty()) {
      const int64_t n = outShape[i];
      auto linear = [n](int64_t outer, int64_t inner) { return outer == inner * n; };
      if (linear(loops.aStrides.back(), a[i]) && linear(loops.bStrides.back(), b[i])) {
        loops.dims.back() *= n;
        loops.aStrides.back() = a[i];
        loops.bStrides.back() = b[i];
        continue;
      }
    }
    loops.dims.push_back(outShape[i]);
    loops.aStrides.push_back(a[i]);
    loops.bStrides.push_back(b[i]);
  }
  if (loops.dims.empty()) loops = {{1}, {0}, {0}};
  return loops;
}

template <typename Op>
void binaryLoop(const float* a, const float* b, float* out, const BroadcastLoops& loops, Op op) {
  const size_t innerAxis = loops.dims.size() - 1;
  const int64_t inner = loops.dims[innerAxis];
  const int64_t sa = loops.aStrides[innerAxis], sb = loops.bStrides[innerAxis];
  // Rows go in runs along the axis just outside the inner one, whose strides stay fixed within a run:
  // the outer odometer steps once per run, not once per row, which is most of the work when rows are
  // short (a [4,64,64,1] mask times [4,64,64,2] scores: 16384 rows of 2).
  const bool hasMiddle = innerAxis > 0;
  const int64_t middleDim = hasMiddle ? loops.dims[innerAxis - 1] : 1;
  const int64_t ma = hasMiddle ? loops.aStrides[innerAxis - 1] : 0, mb = hasMiddle ? loops.bStrides[innerAxis - 1] : 0;
  int64_t rows = 1;
  for (size_t i = 0; i < innerAxis; ++i) rows *= loops.dims[i];
  const auto rowsLoop = [&](int64_t rowBegin, int64_t rowEnd) SEGKIT_ALWAYS_INLINE {
    // Odometer over the outer axes, started at rowBegin and stepped per run.
    std::vector<int64_t> index(innerAxis, 0);
    int64_t aOffset = 0, bOffset = 0;
    for (size_t axis = innerAxis, rest = rowBegin; axis-- > 0;) {
      index[axis] = static_cast<int64_t>(rest) % loops.dims[axis];
      rest /= loops.dims[axis];
      aOffset += index[axis] * loops.aStrides[axis];
      bOffset += index[axis] * loops.bStrides[axis];
    }
    for (int64_t row = rowBegin; row < rowEnd;) {
      const int64_t run = std::min(rowEnd - row, middleDim - (hasMiddle ? index[innerAxis - 1] : 0));
      const float* ar = a + aOffset;
      const float* br = b + bOffset;
      float* o = out + row * inner;
      const int64_t stepA = ma, stepB = mb, n = inner;
      // The three inner-loop shapes, each simple enough to vectorise.
      if (sa == 1 && sb == 1) {
        for (int64_t r = 0; r < run; ++r)
          for (int64_t i = 0; i < n; ++i) o[r * n + i] = op(ar[r * stepA + i], br[r * stepB + i]);
      } else if (sa == 1) {
        for (int64_t r = 0; r < run; ++r) {
          const float bv = br[r * stepB];
          for (int64_t i = 0; i < n; ++i) o[r * n + i] = op(ar[r * stepA + i], bv);
        }
      } else if (sb == 1) {
        for (int64_t r = 0; r < run; ++r) {
          const float av = ar[r * stepA];
          for (int64_t i = 0; i < n; ++i) o[r * n + i] = op(av, br[r * stepB + i]);
        }
      } else {
        for (int64_t r = 0; r < run; ++r) {
          const float value = op(ar[r * stepA], br[r * stepB]);
          for (int64_t i = 0; i < n; ++i) o[r * n + i] = value;
        }
      }
      row += run;
      if (!hasMiddle) break;
      // Advance the odometer by the run: along the middle axis, carrying into the outer ones at its end.
      index[innerAxis - 1] += run;
      aOffset += run * ma;
      bOffset += run * mb;
      for (size_t axis = innerAxis - 1; index[axis] == loops.dims[axis] && axis > 0; --axis) {
        aOffset += loops.aStrides[axis - 1] - index[axis] * loops.aStrides[axis];
        bOffset += loops.bStrides[axis - 1] - index[axis] * loops.bStrides[axis];
        index[axis] = 0;
        ++index[axis - 1];
      }
    }
  };
  parallelRanges(rows, std::max<int64_t>(1, kMinGrain / inner), withIsa(rowsLoop));
}

}  // namespace

void binaryBroadcast(BinaryOp op, const float* a, const std::vector<int64_t>& aShape, const float* b,
                     const std::vector<int64_t>& bShape, float* out, const std::vector<int64_t>& outShape) {
  const BroadcastLoops loops = broadcastLoops(aShape, bShape, outShape);
  switch (op) {
    case BinaryOp::Add:
      return binaryLoop(a, b, out, loops, [](float x, float y) SEGKIT_ALWAYS_INLINE { return x + y; });
    case BinaryOp::Sub:
      return binaryLoop(a, b, out, loops, [](float x, float y) SEGKIT_ALWAYS_INLINE { return x - y; });
    case BinaryOp::Mul:
      return binaryLoop(a, b, out, loops, [](float x, float y) SEGKIT_ALWAYS_INLINE { return x * y; });
    case BinaryOp::Div:
      return binaryLoop(a, b, out, loops, [](float x, float y) SEGKIT_ALWAYS_INLINE { return x / y; });
    case BinaryOp::SquaredDifference:
      return binaryLoop(a, b, out, loops, [](float x, float y) SEGKIT_ALWAYS_INLINE { return (x - y) * (x - y); });
    case BinaryOp::Maximum:  // NaN-propagating like Math.max; x != x is NaN, written to vectorise
      return binaryLoop(a, b, out, loops, [](float x, float y) SEGKIT_ALWAYS_INLINE { return x != x ? x : (y != y ? y : (x > y ? x : y)); });
    case BinaryOp::Minimum:
      return binaryLoop(a, b, out, loops, [](float x, float y) SEGKIT_ALWAYS_INLINE { return x != x ? x : (y != y ? y : (x < y ? x : y)); });
  }
}

void unary(UnaryOp op, const float* x, float* out, int64_t n, float alphaValue) {
  const auto loop = [&](int64_t begin, int64_t end) SEGKIT_ALWAYS_INLINE {
    const float alpha = alphaValue;
    const float* in = x + begin;
    float* o = out + begin;
    const int64_t count = end - begin;
    switch (op) {
      case UnaryOp::Relu:
        for (int64_t i = 0; i < count; ++i) o[i] = in[i] < 0.0f ? 0.0f : in[i];
        break;
      case UnaryOp::Relu6:
        for (int64_t i = 0; i < count; ++i) o[i] = in[i] < 0.0f ? 0.0f : (in[i] > 6.0f ? 6.0f : in[i]);
        break;
      case UnaryOp::Step:  // relu's gradient mask; NaN stays NaN (x != x), branch-free so it vectorises
        for (int64_t i = 0; i < count; ++i) o[i] = in[i] != in[i] ? in[i] : (in[i] > 0.0f ? 1.0f : alpha);
        break;
      case UnaryOp::Exp:
        for (int64_t i = 0; i < count; ++i) o[i] = std::exp(in[i]);
        break;
      case UnaryOp::Log:
        for (int64_t i = 0; i < count; ++i) o[i] = std::log(in[i]);
        break;
      case UnaryOp::Neg:
        for (int64_t i = 0; i < count; ++i) o[i] = -in[i];
        break;
      case UnaryOp::Square:
        for (int64_t i = 0; i < count; ++i) o[i] = in[i] * in[i];
        break;
      case UnaryOp::Sqrt:
        for (int64_t i = 0; i < count; ++i) o[i] = std::sqrt(in[i]);
        break;
      case UnaryOp::Rsqrt:
        for (int64_t i = 0; i < count; ++i) o[i] = 1.0f / std::sqrt(in[i]);
        break;
      case UnaryOp::Sigmoid:
        for (int64_t i = 0; i < count; ++i) o[i] = 1.0f / (1.0f + std::exp(-in[i]));
        break;
      case UnaryOp::Tanh:
        for (int64_t i = 0; i < count; ++i) o[i] = std::tanh(in[i]);
        break;
      case UnaryOp::Abs:
        for (int64_t i = 0; i < count; ++i) o[i] = std::fabs(in[i]);
        break;
      case UnaryOp::Reciprocal:
        for (int64_t i = 0; i < count; ++i) o[i] = 1.0f / in[i];
        break;
    }
  };
  parallelRanges(n, kMinGrain, withIsa(loop));
}

void batchNorm(const float* x, float* out, int64_t rows, int64_t channels, const float* mean, const float* scale,
               const float* offset) {
  const auto loop = [=](int64_t begin, int64_t end) SEGKIT_ALWAYS_INLINE {
    const float *__restrict m = mean, *__restrict s = scale, *__restrict shift = offset;
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * channels;
      float* o = out + r * channels;
      for (int64_t c = 0; c < channels; ++c) o[c] = (xr[c] - m[c]) * s[c] + shift[c];
    }
  };
  parallelRanges(rows, std::max<int64_t>(1, kMinGrain / channels), withIsa(loop));
}

namespace {

/**
 * Sums per-row contributions into `width` doubles: accumulate(rowBegin, rowEnd, block) runs over row
 * chunks in parallel, each into its own zeroed block (through runWithIsa: accumulate is SEGKIT_ALWAYS_INLINE);
 * the blocks are then added in chunk order.
 */
template <typename Accumulate>
std::vector<double> sumOverRows(int64_t rows, int64_t rowElements, int64_t width, Accumulate accumulate) {
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(numThreads(), rows * rowElements / kMinGrain));
  const int64_t chunkRows = (rows + chunks - 1) / chunks;
  std::vector<double> blocks(chunks * width, 0.0);
  parallelFor(chunks, [&](int64_t chunk) {
    const int64_t begin = chunk * chunkRows, end = std::min(rows, begin + chunkRows);
    if (begin < end) runWithIsa(accumulate, begin, end, blocks.data() + chunk * width);
  });
  for (int64_t chunk = 1; chunk < chunks; ++chunk)
    for (int64_t i = 0; i < width; ++i) blocks[i] += blocks[chunk * width + i];
  blocks.resize(width);
  return blocks;
}

/** Per-channel mean over rows, rounded to float like tfjs's Mean. */
std::vector<float> channelMean(const float* x, int64_t rows, int64_t channels) {
  const auto accumulate = [=](int64_t begin, int64_t end, double* __restrict acc) SEGKIT_ALWAYS_INLINE {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * channels;
      for (int64_t c = 0; c < channels; ++c) acc[c] += xr[c];
    }
  };
  const std::vector<double> sums = sumOverRows(rows, channels, channels, accumulate);
  std::vector<float> mean(channels);
  for (int64_t c = 0; c < channels; ++c) mean[c] = static_cast<float>(sums[c] / static_cast<double>(rows));
  return mean;
}

}  // namespace

void batchMoments(const float* x, int64_t rows, int64_t channels, float* mean, float* variance) {
  // Two passes (mean, then squared deviations from the float mean) as tf.moments does.
  const std::vector<float> m = channelMean(x, rows, channels);
  const float* meanData = m.data();
  const auto accumulate = [=](int64_t begin, int64_t end, double* __restrict acc) SEGKIT_ALWAYS_INLINE {
    const float* __restrict mu = meanData;
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * channels;
      for (int64_t c = 0; c < channels; ++c) {
        const float d = xr[c] - mu[c];
        acc[c] += d * d;
      }
    }
  };
  const std::vector<double> squares = sumOverRows(rows, channels, channels, accumulate);
  for (int64_t c = 0; c < channels; ++c) {
    mean[c] = m[c];
    variance[c] = static_cast<float>(squares[c] / static_cast<double>(rows));
  }
}

namespace {

/** Per-channel multiplier scale / sqrt(variance + epsilon), computed as the JS batch-norm kernel does. */
std::vector<float> normMultiplier(const float* variance, const float* scale, int64_t channels, double epsilon) {
  std::vector<float> multiplier(channels);
  for (int64_t c = 0; c < channels; ++c)
    multiplier[c] = static_cast<float>((scale ? static_cast<double>(scale[c]) : 1.0) / std::sqrt(static_cast<double>(variance[c]) + epsilon));
  return multiplier;
}

/**
 * The batch-norm gradient with mean given and dy read through gate(x, c, dy) (relu's mask, or dy itself;
 * SEGKIT_ALWAYS_INLINE, capturing pointers by value): Σ(x-μ)², Σdy and Σdy·(x-μ) in one pass, then
 * dx = scale·σ⁻¹·(dy − mean(dy) − (x−μ)·σ⁻²·mean(dy·(x−μ))).
 */
template <typename Gate>
void batchNormGradWith(const float* x, const float* dy, int64_t rows, int64_t channels, const float* scale, double epsilon,
                       const std::vector<float>& mean, float* dx, float* dScale, float* dOffset, Gate gate) {
  const float* meanData = mean.data();
  const auto accumulate = [=](int64_t begin, int64_t end, double* acc) SEGKIT_ALWAYS_INLINE {
    double* __restrict squares = acc;
    double* __restrict dySum = acc + channels;
    double* __restrict dyCentered = acc + 2 * channels;
    const float* __restrict mu = meanData;
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * channels;
      const float* dyr = dy + r * channels;
      for (int64_t c = 0; c < channels; ++c) {
        const float d = xr[c] - mu[c];
        const float g = gate(xr[c], c, dyr[c]);
        squares[c] += d * d;
        dySum[c] += g;
        dyCentered[c] += g * d;
      }
    }
  };
  const std::vector<double> sums = sumOverRows(rows, 2 * channels, 3 * channels, accumulate);
  const double n = static_cast<double>(rows);
  std::vector<float> outFactor(channels), centeredFactor(channels), dyMean(channels);
  for (int64_t c = 0; c < channels; ++c) {
    const double invStd = 1.0 / std::sqrt(static_cast<double>(static_cast<float>(sums[c] / n)) + epsilon);
    const double gamma = scale ? scale[c] : 1.0;
    outFactor[c] = static_cast<float>(gamma * invStd);
    centeredFactor[c] = static_cast<float>(invStd * invStd * sums[2 * channels + c] / n);
    dyMean[c] = static_cast<float>(sums[channels + c] / n);
    dScale[c] = static_cast<float>(sums[2 * channels + c] * invStd);
    dOffset[c] = static_cast<float>(sums[channels + c]);
  }
  const float *outFactorData = outFactor.data(), *centeredFactorData = centeredFactor.data(), *dyMeanData = dyMean.data();
  const auto loop = [=](int64_t begin, int64_t end) SEGKIT_ALWAYS_INLINE {
    const float *__restrict mu = meanData, *__restrict dyMu = dyMeanData;
    const float *__restrict centered = centeredFactorData, *__restrict factor = outFactorData;
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * channels;
      const float* dyr = dy + r * channels;
      float* o = dx + r * channels;
      for (int64_t c = 0; c < channels; ++c)
        o[c] = (gate(xr[c], c, dyr[c]) - dyMu[c] - (xr[c] - mu[c]) * centered[c]) * factor[c];
    }
  };
  parallelRanges(rows, std::max<int64_t>(1, kMinGrain / channels), withIsa(loop));
}

}  // namespace

void batchNormGrad(const float* x, const float* dy, int64_t rows, int64_t channels, const float* scale, float epsilon,
                   float* dx, float* dScale, float* dOffset) {
  batchNormGradWith(x, dy, rows, channels, scale, epsilon, channelMean(x, rows, channels), dx, dScale, dOffset,
                    [](float, int64_t, float g) SEGKIT_ALWAYS_INLINE { return g; });
}

void batchNormTrain(const float* x, int64_t rows, int64_t channels, const float* scale, const float* offset, double epsilon,
                    bool relu, float* out, float* mean, float* variance) {
  batchMoments(x, rows, channels, mean, variance);
  const std::vector<float> multiplier = normMultiplier(variance, scale, channels, epsilon);
  const std::vector<float> shift = offset ? std::vector<float>(offset, offset + channels) : std::vector<float>(channels, 0.0f);
  const std::vector<float> meanCopy(mean, mean + channels);
  const float *meanData = meanCopy.data(), *multiplierData = multiplier.data(), *shiftData = shift.data();
  const auto loop = [=](int64_t begin, int64_t end) SEGKIT_ALWAYS_INLINE {
    const float *__restrict mu = meanData, *__restrict factor = multiplierData, *__restrict shiftBy = shiftData;
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * channels;
      float* o = out + r * channels;
      if (relu) {
        for (int64_t c = 0; c < channels; ++c) {
          const float y = (xr[c] - mu[c]) * factor[c] + shiftBy[c];
          o[c] = y > 0.0f ? y : (y != y ? y : 0.0f);  // NaN stays NaN, as tf.relu
        }
      } else {
        for (int64_t c = 0; c < channels; ++c) o[c] = (xr[c] - mu[c]) * factor[c] + shiftBy[c];
      }
    }
  };
  parallelRanges(rows, std::max<int64_t>(1, kMinGrain / std::max<int64_t>(1, channels)), withIsa(loop));
}

void batchNormReluGrad(const float* x, const float* dy, int64_t rows, int64_t channels, const float* scale,
                       const float* offset, double epsilon, float* dx, float* dScale, float* dOffset) {
  // The forward's statistics and pre-activation, recomputed with the same code: the mask is exact.
  std::vector<float> mean(channels), variance(channels);
  batchMoments(x, rows, channels, mean.data(), variance.data());
  const std::vector<float> multiplier = normMultiplier(variance.data(), scale, channels, epsilon);
  const std::vector<float> shift = offset ? std::vector<float>(offset, offset + channels) : std::vector<float>(channels, 0.0f);
  const float *meanData = mean.data(), *multiplierData = multiplier.data(), *shiftData = shift.data();
  batchNormGradWith(x, dy, rows, channels, scale, epsilon, mean, dx, dScale, dOffset,
                    [=](float xv, int64_t c, float g) SEGKIT_ALWAYS_INLINE {
                      return valueOrZero((xv - meanData[c]) * multiplierData[c] + shiftData[c] > 0.0f, g);
                    });
}

void softmax(const float* x, float* out, int64_t rows, int64_t columns) {
  parallelRanges(rows, std::max<int64_t>(1, kMinGrain / std::max<int64_t>(1, columns)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * columns;
      float* o = out + r * columns;
      float maximum = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < columns; ++c) maximum = xr[c] > maximum || xr[c] != xr[c] ? xr[c] : maximum;
      float total = 0.0f;
      for (int64_t c = 0; c < columns; ++c) total += (o[c] = std::exp(xr[c] - maximum));
      for (int64_t c = 0; c < columns; ++c) o[c] /= total;
    }
  });
}

bool topK(const float* x, int64_t rows, int64_t size, int64_t k, float* values, int32_t* indices) {
  std::atomic<bool> sawNaN{false};
  parallelRanges(rows, std::max<int64_t>(1, kMinGrain / std::max<int64_t>(1, size)), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float* xr = x + row * size;
      float* top = values + row * k;
      int32_t* topIndex = indices + row * k;
      // Insertion into the row's k-long sorted list; a value equal to the last kept one stays out.
      int64_t filled = 0;
      for (int64_t i = 0; i < size; ++i) {
        const float value = xr[i];
        if (value != value) {
          sawNaN.store(true, std::memory_order_relaxed);
          return;
        }
        if (filled == k && !(value > top[k - 1])) continue;
        int64_t slot = filled < k ? filled++ : k - 1;
        for (; slot > 0 && value > top[slot - 1]; --slot) {
          top[slot] = top[slot - 1];
          topIndex[slot] = topIndex[slot - 1];
        }
        top[slot] = value;
        topIndex[slot] = static_cast<int32_t>(i);
      }
    }
  });
  return !sawNaN.load();
}

void reduce(ReduceOp op, const float* x, float* out, int64_t outer, int64_t size, int64_t inner) {
  // Sums accumulate in double like tfjs's cpu kernels (which add in JS numbers).
  const bool extremum = op == ReduceOp::Max || op == ReduceOp::Min;
  const double initial = op == ReduceOp::Max ? -std::numeric_limits<double>::infinity()
                         : op == ReduceOp::Min ? std::numeric_limits<double>::infinity()
                                               : 0.0;
  auto combine = [op](double acc, float v) SEGKIT_ALWAYS_INLINE {
    // `|`, not `||`: no branch, so the loops if-convert and vectorise.
    if (op == ReduceOp::Max) return ((v > acc) | (v != v)) ? static_cast<double>(v) : acc;
    if (op == ReduceOp::Min) return ((v < acc) | (v != v)) ? static_cast<double>(v) : acc;
    return acc + v;
  };
  const double scale = op == ReduceOp::Mean ? 1.0 / static_cast<double>(size) : 1.0;
  if (inner == 1) {
    // Each output reduces a contiguous row.
    const auto rowsLoop = [&](int64_t begin, int64_t end) SEGKIT_ALWAYS_INLINE {
      for (int64_t o = begin; o < end; ++o) {
        const float* row = x + o * size;
        double acc = initial;
        if (extremum) {
          for (int64_t r = 0; r < size; ++r) acc = combine(acc, row[r]);
        } else {
          double partial[4] = {0, 0, 0, 0};  // independent chains vectorise
          int64_t r = 0;
          for (; r + 4 <= size; r += 4)
            for (int k = 0; k < 4; ++k) partial[k] += row[r + k];
          for (; r < size; ++r) partial[0] += row[r];
          acc = (partial[0] + partial[1]) + (partial[2] + partial[3]);
        }
        out[o] = static_cast<float>(acc * scale);
      }
    };
    parallelRanges(outer, std::max<int64_t>(1, kMinGrain / std::max<int64_t>(1, size)), withIsa(rowsLoop));
    return;
  }
  // Reduced axis in the middle: accumulate whole rows of `inner` values, split over columns.
  const auto columnsLoop = [&](int64_t begin, int64_t end) SEGKIT_ALWAYS_INLINE {
    std::vector<double> acc;
    for (int64_t start = begin; start < end;) {
      const int64_t o = start / inner, c0 = start % inner;
      const int64_t c1 = std::min(inner, c0 + (end - start));
      acc.assign(c1 - c0, initial);
      for (int64_t r = 0; r < size; ++r) {
        const float* row = x + (o * size + r) * inner;
        if (extremum) {
          for (int64_t c = c0; c < c1; ++c) acc[c - c0] = combine(acc[c - c0], row[c]);
        } else {
          for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
        }
      }
      for (int64_t c = c0; c < c1; ++c) out[o * inner + c] = static_cast<float>(acc[c - c0] * scale);
      start += c1 - c0;
    }
  };
  parallelRanges(outer * inner, std::max<int64_t>(64, kMinGrain / std::max<int64_t>(1, size)), withIsa(columnsLoop));
}

void sgdUpdate(const float* param, const float* grad, const float* buffer, int64_t n, const SgdHyperparameters& h,
               float* newParam, float* newBuffer) {
  // PyTorch's SGD step, in the order of its element-wise ops so that float32 rounding matches them.
  const bool useMomentum = h.momentum != 0.0f;
  const float gradScale = 1.0f - h.dampening;
  const SgdHyperparameters hyper = h;
  const auto loop = [=](int64_t begin, int64_t end) SEGKIT_ALWAYS_INLINE {
    const SgdHyperparameters local = hyper;  // a local: the float stores cannot alias it
    const float *p = param, *g = grad, *b0 = buffer;
    float *np = newParam, *nb = newBuffer;
    for (int64_t i = begin; i < end; ++i) {
      float direction = local.weightDecay != 0.0f ? g[i] + p[i] * local.weightDecay : g[i];
      if (useMomentum) {
        const float b = b0 ? b0[i] * local.momentum + direction * gradScale : direction;
        nb[i] = b;
        direction = local.nesterov ? direction + b * local.momentum : b;
      }
      np[i] = p[i] - direction * local.lr;
    }
  };
  parallelRanges(n, kMinGrain, withIsa(loop));
}

void adamUpdate(const float* param, const float* grad, const float* expAvg, const float* expAvgSq, const float* maxExpAvgSq,
                int64_t n, const AdamHyperparameters& h, bool amsgrad, float* newParam, float* newExpAvg,
                float* newExpAvgSq, float* newMax) {
  // Scalars rounded to float32 as tfjs's scalar tensors are; every operation below is one element-wise
  // op of optimizers/src/adam.ts in its order, so results match it exactly (no FMA contraction here).
  const float decay = static_cast<float>(1.0 - static_cast<double>(h.lr) * h.weightDecay);
  const float oneMinusBeta1 = static_cast<float>(1.0 - h.beta1);
  const float oneMinusBeta2 = static_cast<float>(1.0 - h.beta2);
  const double biasCorrection1 = 1.0 - std::pow(static_cast<double>(h.beta1), static_cast<double>(h.step));
  const double biasCorrection2 = 1.0 - std::pow(static_cast<double>(h.beta2), static_cast<double>(h.step));
  const float sqrtCorrection2 = static_cast<float>(std::sqrt(biasCorrection2));
  const float stepSize = static_cast<float>(h.lr / biasCorrection1);
  const float beta1 = h.beta1, beta2 = h.beta2, eps = h.eps, weightDecay = h.weightDecay;
  // Weight decay as one of two forms: coupled (wd * p joins the gradient) or a factor on p (AdamW's,
  // exactly 1 without decay: p * 1 is p).
  const bool coupled = !h.decoupled && weightDecay != 0.0f;
  const float paramFactor = h.decoupled && weightDecay != 0.0f ? decay : 1.0f;
  // A lone missing moment reads zeros (0 * beta is +0, as the null case's 0.0f): one flag covers both.
  std::vector<float> zeros;
  if ((expAvg == nullptr) != (expAvgSq == nullptr)) zeros.assign(n, 0.0f);
  const float* avg = expAvg ? expAvg : expAvgSq ? zeros.data() : nullptr;
  const float* avgSq = expAvgSq ? expAvgSq : expAvg ? zeros.data() : nullptr;
  const int maxMode = !amsgrad ? 0 : maxExpAvgSq ? 2 : 1;  // off, first step (max = v), running max
  // The modes are compile-time flags, so each combination is a branch-free loop that vectorises; ivdep:
  // outputs may be their inputs' arrays, element for element, which carries no dependence across i.
  const auto loop = [=](auto coupledFlag, auto momentsFlag, auto maxFlag, int64_t begin, int64_t end) SEGKIT_ALWAYS_INLINE {
    constexpr bool kCoupled = decltype(coupledFlag)::value, kMoments = decltype(momentsFlag)::value;
    constexpr int kMaxMode = decltype(maxFlag)::value;
#pragma GCC ivdep
    for (int64_t i = begin; i < end; ++i) {
      float value = param[i];
      float g = grad[i];
      if constexpr (kCoupled) g = g + value * weightDecay;
      else value = value * paramFactor;
      float m = g * oneMinusBeta1, v = (g * g) * oneMinusBeta2;
      if constexpr (kMoments) {
        m = avg[i] * beta1 + m;
        v = avgSq[i] * beta2 + v;
      } else {
        m = 0.0f + m;
        v = 0.0f + v;
      }
      float denominatorMoment = v;
      if constexpr (kMaxMode == 2) {
        const float previous = maxExpAvgSq[i];
        denominatorMoment = (previous != previous) | (previous > v) ? previous : v;
      }
      if constexpr (kMaxMode != 0) newMax[i] = denominatorMoment;
      const float denominator = std::sqrt(denominatorMoment) / sqrtCorrection2 + eps;
      newExpAvg[i] = m;
      newExpAvgSq[i] = v;
      newParam[i] = value - (m / denominator) * stepSize;
    }
  };
  const auto run = [&](auto... flags) {
    parallelRanges(n, kMinGrain, [&](int64_t begin, int64_t end) { runWithIsa(loop, flags..., begin, end); });
  };
  const auto withMaxMode = [&](auto coupledFlag, auto momentsFlag) {
    if (maxMode == 0) run(coupledFlag, momentsFlag, std::integral_constant<int, 0>());
    else if (maxMode == 1) run(coupledFlag, momentsFlag, std::integral_constant<int, 1>());
    else run(coupledFlag, momentsFlag, std::integral_constant<int, 2>());
  };
  const auto withMoments = [&](auto coupledFlag) {
    if (avg) withMaxMode(coupledFlag, std::true_type());
    else withMaxMode(coupledFlag, std::false_type());
  };
  if (coupled) withMoments(std::true_type());
  else withMoments(std::false_type());
}

void copyRows(const float* src, int64_t srcStride, float* dst, int64_t dstStride, int64_t rows, int64_t run) {
  parallelRanges(rows, std::max<int64_t>(1, kMinGrain / std::max<int64_t>(run, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) std::memcpy(dst + r * dstStride, src + r * srcStride, sizeof(float) * run);
  });
}

}  // namespace segkit
