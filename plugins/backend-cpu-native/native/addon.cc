// N-API bindings (plain C API, ABI-stable across Node versions). Every function is synchronous and
// works on the callers' typed arrays in place: inputs are read through their views, outputs are
// preallocated Float32Arrays written in place. Geometry travels as one Int32Array (WindowGeometry's
// fields in order) to keep the argument lists short.
#include <node_api.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif


#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "gemm.h"
#include "ops.h"
#include "thread_pool.h"
#include "winograd.h"

namespace {

using namespace segkit;

struct ArgumentError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/** Reads and checks the arguments of one call. */
class Arguments {
 public:
  Arguments(napi_env env, napi_callback_info info) : env_(env) {
    count_ = kMax;
    napi_get_cb_info(env, info, &count_, values_, nullptr, nullptr);
  }

  float* floats(size_t i, size_t minLength = 0) {
    void* data = typedArray(i, napi_float32_array, minLength);
    return static_cast<float*>(data);
  }

  int32_t* int32s(size_t i, size_t minLength) {
    return static_cast<int32_t*>(typedArray(i, napi_int32_array, minLength));
  }

  const double* doubles(size_t i, size_t minLength) {
    return static_cast<const double*>(typedArray(i, napi_float64_array, minLength));
  }

  /** A Float32Array or null/undefined (returns nullptr). */
  float* optionalFloats(size_t i) {
    napi_valuetype type;
    napi_typeof(env_, at(i), &type);
    if (type == napi_null || type == napi_undefined) return nullptr;
    return floats(i);
  }

  /** Element count of the typed array argument i. */
  size_t length(size_t i) {
    napi_typedarray_type type;
    size_t count = 0;
    napi_get_typedarray_info(env_, at(i), &type, &count, nullptr, nullptr, nullptr);
    return count;
  }

  std::vector<int64_t> shape(size_t i) {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    typedArray(i, napi_int32_array, 0);
    napi_get_typedarray_info(env_, at(i), &type, &length, &data, nullptr, nullptr);
    const int32_t* dims = static_cast<const int32_t*>(data);
    return std::vector<int64_t>(dims, dims + length);
  }

  WindowGeometry geometry(size_t i) {
    constexpr size_t kFields = sizeof(WindowGeometry) / sizeof(int64_t);
    const int32_t* raw = static_cast<const int32_t*>(typedArray(i, napi_int32_array, kFields));
    int64_t fields[kFields];
    for (size_t f = 0; f < kFields; ++f) fields[f] = raw[f];
    WindowGeometry g;
    std::memcpy(&g, fields, sizeof(g));
    return g;
  }

  int64_t integer(size_t i) {
    int64_t value = 0;
    if (napi_get_value_int64(env_, at(i), &value) != napi_ok) fail(i, "a number");
    return value;
  }

  double number(size_t i) {
    double value = 0;
    if (napi_get_value_double(env_, at(i), &value) != napi_ok) fail(i, "a number");
    return value;
  }

  bool boolean(size_t i) {
    bool value = false;
    if (napi_get_value_bool(env_, at(i), &value) != napi_ok) fail(i, "a boolean");
    return value;
  }

  std::string string(size_t i) {
    char buffer[64];
    size_t length = 0;
    if (napi_get_value_string_utf8(env_, at(i), buffer, sizeof(buffer), &length) != napi_ok) fail(i, "a string");
    return std::string(buffer, length);
  }

 private:
  static constexpr size_t kMax = 12;

  napi_value at(size_t i) {
    if (i >= count_) throw ArgumentError("missing argument " + std::to_string(i));
    return values_[i];
  }

  void* typedArray(size_t i, napi_typedarray_type expected, size_t minLength) {
    bool isTypedArray = false;
    napi_is_typedarray(env_, at(i), &isTypedArray);
    const char* expectedName = expected == napi_float32_array ? "a Float32Array" : expected == napi_float64_array ? "a Float64Array" : "an Int32Array";
    if (!isTypedArray) fail(i, expectedName);
    napi_typedarray_type type;
    size_t length;
    void* data;
    napi_get_typedarray_info(env_, at(i), &type, &length, &data, nullptr, nullptr);
    if (type != expected) fail(i, expectedName);
    if (length < minLength) throw ArgumentError("argument " + std::to_string(i) + " is too short");
    return data;
  }

  [[noreturn]] void fail(size_t i, const char* what) {
    throw ArgumentError("argument " + std::to_string(i) + " must be " + what);
  }

  napi_env env_;
  size_t count_;
  napi_value values_[kMax];
};

using Body = napi_value (*)(napi_env, Arguments&);

/** Wraps a binding body: C++ exceptions become JS exceptions. */
template <Body body>
napi_value guarded(napi_env env, napi_callback_info info) {
  try {
    Arguments args(env, info);
    return body(env, args);
  } catch (const std::exception& error) {
    napi_throw_error(env, nullptr, error.what());
    return nullptr;
  }
}

napi_value undefinedValue(napi_env env) {
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

// matMul(a, aOffset, b, bOffset, c, cOffset, m, n, k, transposeA, transposeB): c = op(a) * op(b)
napi_value matMul(napi_env env, Arguments& args) {
  const float* a = args.floats(0) + args.integer(1);
  const float* b = args.floats(2) + args.integer(3);
  float* c = args.floats(4) + args.integer(5);
  const int64_t m = args.integer(6), n = args.integer(7), k = args.integer(8);
  const bool transposeA = args.boolean(9), transposeB = args.boolean(10);
  const StridedView aView = transposeA ? StridedView(a, 1, m) : StridedView(a, k, 1);
  const StridedView bView = transposeB ? StridedView(b, 1, k) : StridedView(b, n, 1);
  gemm(aView, bView, OutputMatrix{c, n, 1}, m, n, k, false);
  return undefinedValue(env);
}

template <void (*kernel)(const float*, const float*, float*, const WindowGeometry&)>
napi_value twoInputKernel(napi_env env, Arguments& args) {
  kernel(args.floats(0), args.floats(1), args.floats(2), args.geometry(3));
  return undefinedValue(env);
}

template <void (*kernel)(const float*, float*, const WindowGeometry&)>
napi_value oneInputKernel(napi_env env, Arguments& args) {
  kernel(args.floats(0), args.floats(1), args.geometry(2));
  return undefinedValue(env);
}

template <void (*kernel)(const float*, float*, const WindowGeometry&, bool, bool)>
napi_value resizeKernel(napi_env env, Arguments& args) {
  kernel(args.floats(0), args.floats(1), args.geometry(2), args.boolean(3), args.boolean(4));
  return undefinedValue(env);
}

// biasActivation(out, rows, channels, bias | null, activationCode, alpha)
napi_value biasActivationBinding(napi_env env, Arguments& args) {
  const int64_t code = args.integer(4);
  if (code < 0 || code > static_cast<int64_t>(Activation::Sigmoid)) throw ArgumentError("unknown activation code");
  biasActivation(args.floats(0), args.integer(1), args.integer(2), args.optionalFloats(3),
                 static_cast<Activation>(code), static_cast<float>(args.number(5)));
  return undefinedValue(env);
}

// binaryBroadcast(opCode, a, aShape, b, bShape, out, outShape)
napi_value binaryBroadcastBinding(napi_env env, Arguments& args) {
  const int64_t code = args.integer(0);
  if (code < 0 || code > static_cast<int64_t>(BinaryOp::Minimum)) throw ArgumentError("unknown binary op code");
  binaryBroadcast(static_cast<BinaryOp>(code), args.floats(1), args.shape(2), args.floats(3), args.shape(4), args.floats(5),
                  args.shape(6));
  return undefinedValue(env);
}

// unary(opCode, x, out, alpha)
napi_value unaryBinding(napi_env env, Arguments& args) {
  const int64_t code = args.integer(0);
  if (code < 0 || code > static_cast<int64_t>(UnaryOp::Reciprocal)) throw ArgumentError("unknown unary op code");
  const size_t n = args.length(2);
  unary(static_cast<UnaryOp>(code), args.floats(1, n), args.floats(2), static_cast<int64_t>(n), static_cast<float>(args.number(3)));
  return undefinedValue(env);
}

// batchNorm(x, out, rows, channels, mean, scale, offset): per-channel arrays of `channels` floats
napi_value batchNormBinding(napi_env env, Arguments& args) {
  const int64_t rows = args.integer(2), channels = args.integer(3);
  batchNorm(args.floats(0, rows * channels), args.floats(1, rows * channels), rows, channels, args.floats(4, channels),
            args.floats(5, channels), args.floats(6, channels));
  return undefinedValue(env);
}

// batchMoments(x, rows, channels, mean, variance)
napi_value batchMomentsBinding(napi_env env, Arguments& args) {
  const int64_t rows = args.integer(1), channels = args.integer(2);
  batchMoments(args.floats(0, rows * channels), rows, channels, args.floats(3, channels), args.floats(4, channels));
  return undefinedValue(env);
}

// batchNormGrad(x, dy, rows, channels, scale | null, epsilon, dx, dScale, dOffset)
napi_value batchNormGradBinding(napi_env env, Arguments& args) {
  const int64_t rows = args.integer(2), channels = args.integer(3);
  const float* scale = args.optionalFloats(4);
  if (scale && args.length(4) < static_cast<size_t>(channels)) throw ArgumentError("argument 4 is too short");
  batchNormGrad(args.floats(0, rows * channels), args.floats(1, rows * channels), rows, channels, scale,
                static_cast<float>(args.number(5)), args.floats(6, rows * channels), args.floats(7, channels),
                args.floats(8, channels));
  return undefinedValue(env);
}

// batchNormTrain(x, rows, channels, scale | null, offset | null, epsilon, relu, out, mean, variance)
napi_value batchNormTrainBinding(napi_env env, Arguments& args) {
  const int64_t rows = args.integer(1), channels = args.integer(2);
  const float* scale = args.optionalFloats(3);
  const float* offset = args.optionalFloats(4);
  if ((scale && args.length(3) < static_cast<size_t>(channels)) || (offset && args.length(4) < static_cast<size_t>(channels)))
    throw ArgumentError("scale and offset need one value per channel");
  batchNormTrain(args.floats(0, rows * channels), rows, channels, scale, offset, args.number(5), args.boolean(6),
                 args.floats(7, rows * channels), args.floats(8, channels), args.floats(9, channels));
  return undefinedValue(env);
}

// batchNormReluGrad(x, dy, rows, channels, scale | null, offset | null, epsilon, dx, dScale, dOffset)
napi_value batchNormReluGradBinding(napi_env env, Arguments& args) {
  const int64_t rows = args.integer(2), channels = args.integer(3);
  const float* scale = args.optionalFloats(4);
  const float* offset = args.optionalFloats(5);
  if ((scale && args.length(4) < static_cast<size_t>(channels)) || (offset && args.length(5) < static_cast<size_t>(channels)))
    throw ArgumentError("scale and offset need one value per channel");
  batchNormReluGrad(args.floats(0, rows * channels), args.floats(1, rows * channels), rows, channels, scale, offset,
                    args.number(6), args.floats(7, rows * channels), args.floats(8, channels), args.floats(9, channels));
  return undefinedValue(env);
}

// sgdUpdate(param, grad, buffer | null, newParam, newBuffer | null, lr, momentum, dampening, weightDecay, nesterov)
napi_value sgdUpdateBinding(napi_env env, Arguments& args) {
  const size_t n = args.length(0);
  const SgdHyperparameters h{static_cast<float>(args.number(5)), static_cast<float>(args.number(6)),
                             static_cast<float>(args.number(7)), static_cast<float>(args.number(8)), args.boolean(9)};
  const float* buffer = args.optionalFloats(2);
  float* newBuffer = args.optionalFloats(4);
  if (buffer && args.length(2) < n) throw ArgumentError("argument 2 is too short");
  if (h.momentum != 0.0f && (!newBuffer || args.length(4) < n)) throw ArgumentError("argument 4 must hold the new momentum buffer");
  sgdUpdate(args.floats(0, n), args.floats(1, n), buffer, static_cast<int64_t>(n), h, args.floats(3, n), newBuffer);
  return undefinedValue(env);
}

// adamUpdate(param, grad, expAvg | null, expAvgSq | null, maxExpAvgSq | null, newParam, newExpAvg, newExpAvgSq,
//            newMax | null, [lr, beta1, beta2, eps, weightDecay, step] (Float64Array), decoupled, amsgrad)
napi_value adamUpdateBinding(napi_env env, Arguments& args) {
  const size_t n = args.length(0);
  auto optionalOfLength = [&](size_t i) {
    float* values = args.optionalFloats(i);
    if (values && args.length(i) < n) throw ArgumentError("argument " + std::to_string(i) + " is too short");
    return values;
  };
  const float* expAvg = optionalOfLength(2);
  const float* expAvgSq = optionalOfLength(3);
  const float* maxExpAvgSq = optionalOfLength(4);
  float* newMax = optionalOfLength(8);
  const double* hyper = args.doubles(9, 6);
  const bool amsgrad = args.boolean(11);
  if (amsgrad && !newMax) throw ArgumentError("argument 8 must hold the new max_exp_avg_sq with amsgrad");
  const AdamHyperparameters h{static_cast<float>(hyper[0]), static_cast<float>(hyper[1]), static_cast<float>(hyper[2]),
                              static_cast<float>(hyper[3]), static_cast<float>(hyper[4]), args.boolean(10),
                              static_cast<int64_t>(hyper[5])};
  adamUpdate(args.floats(0, n), args.floats(1, n), expAvg, expAvgSq, maxExpAvgSq, static_cast<int64_t>(n), h, amsgrad,
             args.floats(5, n), args.floats(6, n), args.floats(7, n), newMax);
  return undefinedValue(env);
}

// copyRows(src, srcOffset, srcStride, dst, dstOffset, dstStride, rows, run): every row inside both arrays
napi_value copyRowsBinding(napi_env env, Arguments& args) {
  const int64_t srcOffset = args.integer(1), srcStride = args.integer(2), dstOffset = args.integer(4), dstStride = args.integer(5);
  const int64_t rows = args.integer(6), run = args.integer(7);
  if (rows <= 0 || run <= 0) return undefinedValue(env);
  auto fits = [&](size_t i, int64_t offset, int64_t stride) {
    return offset >= 0 && stride >= 0 && offset + (rows - 1) * stride + run <= static_cast<int64_t>(args.length(i));
  };
  if (!fits(0, srcOffset, srcStride)) throw ArgumentError("copyRows: the source rows run past the source array");
  if (!fits(3, dstOffset, dstStride)) throw ArgumentError("copyRows: the destination rows run past the destination array");
  copyRows(args.floats(0) + srcOffset, srcStride, args.floats(3) + dstOffset, dstStride, rows, run);
  return undefinedValue(env);
}

// softmax(x, out, rows, columns)
napi_value softmaxBinding(napi_env env, Arguments& args) {
  const int64_t rows = args.integer(2), columns = args.integer(3);
  softmax(args.floats(0, rows * columns), args.floats(1, rows * columns), rows, columns);
  return undefinedValue(env);
}

// topK(x, rows, size, k, values, indices) -> false on a NaN
napi_value topKBinding(napi_env env, Arguments& args) {
  const int64_t rows = args.integer(1), size = args.integer(2), k = args.integer(3);
  if (rows < 0 || k < 1 || k > size) throw ArgumentError("topK: expected 1 <= k <= size");
  const bool ok = topK(args.floats(0, rows * size), rows, size, k, args.floats(4, rows * k), args.int32s(5, rows * k));
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

// reduce(opCode, x, out, outer, size, inner)
napi_value reduceBinding(napi_env env, Arguments& args) {
  const int64_t code = args.integer(0);
  if (code < 0 || code > static_cast<int64_t>(ReduceOp::Min)) throw ArgumentError("unknown reduce op code");
  reduce(static_cast<ReduceOp>(code), args.floats(1), args.floats(2), args.integer(3), args.integer(4), args.integer(5));
  return undefinedValue(env);
}

napi_value getNumThreads(napi_env env, Arguments&) {
  napi_value result;
  napi_create_int32(env, numThreads(), &result);
  return result;
}

napi_value setNumThreadsBinding(napi_env env, Arguments& args) {
  setNumThreads(static_cast<int>(args.integer(0)));
  return getNumThreads(env, args);
}

/**
 * Hands the whole pages inside a Float32Array's memory back to the kernel (madvise MADV_DONTNEED):
 * for an array the output pool drops, which V8 frees only at its next major GC. The array stays valid
 * (its pages read as zeros when touched again).
 */
napi_value releasePagesBinding(napi_env env, Arguments& args) {
  float* data = args.floats(0);
  const size_t bytes = args.length(0) * sizeof(float);
#if defined(__linux__)
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
#endif
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

napi_value getMicroKernel(napi_env env, Arguments&) {
  napi_value result;
  napi_create_string_utf8(env, microKernelName(), NAPI_AUTO_LENGTH, &result);
  return result;
}

napi_value getMicroKernels(napi_env env, Arguments&) {
  const std::vector<std::string> names = availableMicroKernels();
  napi_value result;
  napi_create_array_with_length(env, names.size(), &result);
  for (size_t i = 0; i < names.size(); ++i) {
    napi_value name;
    napi_create_string_utf8(env, names[i].c_str(), names[i].size(), &name);
    napi_set_element(env, result, static_cast<uint32_t>(i), name);
  }
  return result;
}

napi_value setMicroKernel(napi_env env, Arguments& args) {
  napi_value result;
  napi_get_boolean(env, selectMicroKernel(args.string(0).c_str()), &result);
  return result;
}

napi_value getConvAlgorithm(napi_env env, Arguments&) {
  napi_value result;
  napi_create_string_utf8(env, convAlgorithmName(), NAPI_AUTO_LENGTH, &result);
  return result;
}

napi_value setConvAlgorithm(napi_env env, Arguments& args) {
  napi_value result;
  napi_get_boolean(env, selectConvAlgorithm(args.string(0).c_str()), &result);
  return result;
}

napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor functions[] = {
      {"matMul", nullptr, guarded<matMul>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2d", nullptr, guarded<twoInputKernel<conv2d>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackpropInput", nullptr, guarded<twoInputKernel<conv2dBackpropInput>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackpropFilter", nullptr, guarded<twoInputKernel<conv2dBackpropFilter>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"depthwiseConv2d", nullptr, guarded<twoInputKernel<depthwiseConv2d>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"depthwiseConv2dBackpropInput", nullptr, guarded<twoInputKernel<depthwiseConv2dBackpropInput>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"depthwiseConv2dBackpropFilter", nullptr, guarded<twoInputKernel<depthwiseConv2dBackpropFilter>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPool", nullptr, guarded<oneInputKernel<maxPool>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPoolGrad", nullptr, guarded<twoInputKernel<maxPoolGrad>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"avgPool", nullptr, guarded<oneInputKernel<avgPool>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"avgPoolGrad", nullptr, guarded<oneInputKernel<avgPoolGrad>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"resizeBilinear", nullptr, guarded<resizeKernel<resizeBilinear>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"resizeBilinearGrad", nullptr, guarded<resizeKernel<resizeBilinearGrad>>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"biasActivation", nullptr, guarded<biasActivationBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binaryBroadcast", nullptr, guarded<binaryBroadcastBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, guarded<unaryBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNorm", nullptr, guarded<batchNormBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchMoments", nullptr, guarded<batchMomentsBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormGrad", nullptr, guarded<batchNormGradBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormTrain", nullptr, guarded<batchNormTrainBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormReluGrad", nullptr, guarded<batchNormReluGradBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sgdUpdate", nullptr, guarded<sgdUpdateBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamUpdate", nullptr, guarded<adamUpdateBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"copyRows", nullptr, guarded<copyRowsBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmax", nullptr, guarded<softmaxBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"topK", nullptr, guarded<topKBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reduce", nullptr, guarded<reduceBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"numThreads", nullptr, guarded<getNumThreads>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setNumThreads", nullptr, guarded<setNumThreadsBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"releasePages", nullptr, guarded<releasePagesBinding>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"microKernel", nullptr, guarded<getMicroKernel>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"microKernels", nullptr, guarded<getMicroKernels>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setMicroKernel", nullptr, guarded<setMicroKernel>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"convAlgorithm", nullptr, guarded<getConvAlgorithm>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setConvAlgorithm", nullptr, guarded<setConvAlgorithm>, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(functions) / sizeof(functions[0]), functions);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
