// N-API binding of the system's MPI (plain C API, ABI-stable across Node versions). segkit writes only
// this binding; the transport, the process wire-up and the failure handling are MPI's. Every call is
// synchronous and works in place on the caller's typed arrays. MPI is initialised with
// MPI_THREAD_SERIALIZED: the calls come from the JavaScript thread only, one at a time.
#include <mpi.h>
#include <node_api.h>

#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kMaxArgs = 4;

struct CallError {
  std::string message;
};

class Arguments {
 public:
  Arguments(napi_env env, napi_callback_info info) : env_(env) {
    count_ = kMaxArgs;
    napi_get_cb_info(env, info, &count_, values_, nullptr, nullptr);
  }

  /** Any TypedArray's bytes (in place). */
  void* bytes(size_t index, size_t* length, napi_typedarray_type* type) const {
    check(index);
    bool isTyped = false;
    napi_is_typedarray(env_, values_[index], &isTyped);
    if (!isTyped) throw CallError{"argument " + std::to_string(index) + ": expected a typed array"};
    size_t elements = 0;
    void* data = nullptr;
    napi_value buffer;
    size_t offset = 0;
    napi_get_typedarray_info(env_, values_[index], type, &elements, &data, &buffer, &offset);
    *length = elements * elementSize(*type);
    return data;
  }

  float* floats(size_t index, size_t* count) const {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = bytes(index, &length, &type);
    if (type != napi_float32_array) throw CallError{"argument " + std::to_string(index) + ": expected a Float32Array"};
    *count = length / sizeof(float);
    return static_cast<float*>(data);
  }

  int64_t integer(size_t index) const {
    check(index);
    int64_t value = 0;
    if (napi_get_value_int64(env_, values_[index], &value) != napi_ok) {
      throw CallError{"argument " + std::to_string(index) + ": expected an integer"};
    }
    return value;
  }

  size_t count() const { return count_; }

 private:
  void check(size_t index) const {
    if (index >= count_) throw CallError{"missing argument " + std::to_string(index)};
  }

  static size_t elementSize(napi_typedarray_type type) {
    switch (type) {
      case napi_int8_array:
      case napi_uint8_array:
      case napi_uint8_clamped_array:
        return 1;
      case napi_int16_array:
      case napi_uint16_array:
        return 2;
      case napi_float64_array:
      case napi_bigint64_array:
      case napi_biguint64_array:
        return 8;
      default:
        return 4;
    }
  }

  napi_env env_;
  size_t count_;
  napi_value values_[kMaxArgs];
};

std::string mpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

void checkMpi(int code, const char* what) {
  if (code != MPI_SUCCESS) throw CallError{std::string(what) + ": " + mpiErrorText(code)};
}

void requireInitialized() {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) throw CallError{"MPI is not initialised (call init() first) or already finalised"};
}

napi_value makeInt(napi_env env, int64_t value) {
  napi_value result;
  napi_create_int64(env, value, &result);
  return result;
}

napi_value undefinedValue(napi_env env) {
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

/** Runs one binding body; a CallError becomes a JavaScript Error with its message. */
template <typename Body>
napi_value guarded(napi_env env, Body body) {
  try {
    return body();
  } catch (const CallError& error) {
    napi_throw_error(env, nullptr, error.message.c_str());
    return nullptr;
  }
}

/**
 * Node loads addons with RTLD_LOCAL, so libmpi's symbols are invisible to the components Open MPI
 * dlopens at MPI_Init (mca_*.so), which then fail with "undefined symbol". Re-opening the library that
 * defines MPI_Init with RTLD_GLOBAL (it is loaded already: RTLD_NOLOAD) fixes that, as mpi4py does.
 */
void promoteMpiLibraryToGlobal() {
  Dl_info where;
  if (dladdr(reinterpret_cast<void*>(&MPI_Init), &where) != 0 && where.dli_fname != nullptr) {
    dlopen(where.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  }
}

/** init(): { rank, size, localRank, localSize, threadLevel, library }. Idempotent. */
napi_value Init(napi_env env, napi_callback_info info) {
  (void)info;
  return guarded(env, [&]() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    int provided = MPI_THREAD_SINGLE;
    if (!initialized) {
      promoteMpiLibraryToGlobal();
      checkMpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    } else {
      MPI_Query_thread(&provided);
    }
    int rank = 0;
    int size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    // Processes on the same node (shared memory): the local rank picks a device or a thread share.
    MPI_Comm local;
    checkMpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
    int localRank = 0;
    int localSize = 1;
    MPI_Comm_rank(local, &localRank);
    MPI_Comm_size(local, &localSize);
    MPI_Comm_free(&local);
    char library[MPI_MAX_LIBRARY_VERSION_STRING];
    int libraryLength = 0;
    MPI_Get_library_version(library, &libraryLength);
    std::string libraryText(library, static_cast<size_t>(libraryLength));
    size_t newline = libraryText.find('\n');
    if (newline != std::string::npos) libraryText.resize(newline);
    while (!libraryText.empty() && (libraryText.back() == ',' || libraryText.back() == ' ' || libraryText.back() == '\0')) libraryText.pop_back();

    napi_value result;
    napi_create_object(env, &result);
    napi_set_named_property(env, result, "rank", makeInt(env, rank));
    napi_set_named_property(env, result, "size", makeInt(env, size));
    napi_set_named_property(env, result, "localRank", makeInt(env, localRank));
    napi_set_named_property(env, result, "localSize", makeInt(env, localSize));
    napi_set_named_property(env, result, "threadLevel", makeInt(env, provided));
    napi_value libraryValue;
    napi_create_string_utf8(env, libraryText.c_str(), libraryText.size(), &libraryValue);
    napi_set_named_property(env, result, "library", libraryValue);
    return result;
  });
}

/** finalize(): idempotent. */
napi_value Finalize(napi_env env, napi_callback_info info) {
  (void)info;
  return guarded(env, [&]() {
    int initialized = 0;
    int finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) checkMpi(MPI_Finalize(), "MPI_Finalize");
    return undefinedValue(env);
  });
}

/**
 * allreduceFloat32(buffer, mean, chunkElements): in-place sum over every rank (divided by the number of
 * ranks when mean is 1), in chunks of at most chunkElements floats (MPI counts are ints, and a bounded
 * chunk bounds the library's temporary buffers).
 */
napi_value AllreduceFloat32(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() {
    Arguments args(env, info);
    requireInitialized();
    size_t count = 0;
    float* data = args.floats(0, &count);
    const bool mean = args.integer(1) != 0;
    int64_t chunk = args.integer(2);
    if (chunk < 1 || chunk > INT_MAX) throw CallError{"chunkElements: expected 1.." + std::to_string(INT_MAX)};
    for (size_t start = 0; start < count; start += static_cast<size_t>(chunk)) {
      const int n = static_cast<int>(std::min<size_t>(static_cast<size_t>(chunk), count - start));
      checkMpi(MPI_Allreduce(MPI_IN_PLACE, data + start, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    }
    if (mean) {
      int size = 1;
      MPI_Comm_size(MPI_COMM_WORLD, &size);
      const float scale = 1.0f / static_cast<float>(size);
      for (size_t i = 0; i < count; i++) data[i] *= scale;
    }
    return undefinedValue(env);
  });
}

/** broadcast(typedArray, root): root's bytes to every rank, in place, in chunks under INT_MAX bytes. */
napi_value Broadcast(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() {
    Arguments args(env, info);
    requireInitialized();
    size_t length = 0;
    napi_typedarray_type type;
    char* data = static_cast<char*>(args.bytes(0, &length, &type));
    const int root = static_cast<int>(args.integer(1));
    const size_t chunk = static_cast<size_t>(1) << 30;
    for (size_t start = 0; start < length; start += chunk) {
      const int n = static_cast<int>(std::min(chunk, length - start));
      checkMpi(MPI_Bcast(data + start, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
    return undefinedValue(env);
  });
}

/** barrier() */
napi_value Barrier(napi_env env, napi_callback_info info) {
  (void)info;
  return guarded(env, [&]() {
    requireInitialized();
    checkMpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
    return undefinedValue(env);
  });
}

/**
 * gatherBytes(uint8Array, root): every rank's bytes (any lengths) to root, as an array of Uint8Arrays in
 * rank order; undefined on the other ranks. Meant for small values (JSON).
 */
napi_value GatherBytes(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() {
    Arguments args(env, info);
    requireInitialized();
    size_t length = 0;
    napi_typedarray_type type;
    char* data = static_cast<char*>(args.bytes(0, &length, &type));
    const int root = static_cast<int>(args.integer(1));
    if (length > static_cast<size_t>(INT_MAX)) throw CallError{"gather: value too large"};
    int rank = 0;
    int size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int mine = static_cast<int>(length);
    std::vector<int> lengths(rank == root ? size : 0);
    checkMpi(MPI_Gather(&mine, 1, MPI_INT, lengths.data(), 1, MPI_INT, root, MPI_COMM_WORLD), "MPI_Gather");
    std::vector<int> offsets(lengths.size());
    int64_t total = 0;
    for (size_t i = 0; i < lengths.size(); i++) {
      offsets[i] = static_cast<int>(total);
      total += lengths[i];
    }
    if (total > INT_MAX) throw CallError{"gather: values too large"};
    std::vector<char> all(static_cast<size_t>(total));
    checkMpi(MPI_Gatherv(data, mine, MPI_BYTE, all.data(), lengths.data(), offsets.data(), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Gatherv");
    if (rank != root) return undefinedValue(env);
    napi_value result;
    napi_create_array_with_length(env, static_cast<size_t>(size), &result);
    for (int i = 0; i < size; i++) {
      void* target = nullptr;
      napi_value arrayBuffer;
      napi_create_arraybuffer(env, static_cast<size_t>(lengths[i]), &target, &arrayBuffer);
      if (lengths[i] > 0) std::memcpy(target, all.data() + offsets[i], static_cast<size_t>(lengths[i]));
      napi_value view;
      napi_create_typedarray(env, napi_uint8_array, static_cast<size_t>(lengths[i]), arrayBuffer, 0, &view);
      napi_set_element(env, result, static_cast<uint32_t>(i), view);
    }
    return result;
  });
}

/** abort(code): MPI_Abort on the world communicator; the launcher ends every rank. Does not return. */
napi_value Abort(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() {
    Arguments args(env, info);
    const int code = args.count() > 0 ? static_cast<int>(args.integer(0)) : 1;
    int initialized = 0;
    int finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
    return undefinedValue(env);
  });
}

/** wtime(): MPI_Wtime (seconds). */
napi_value Wtime(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_double(env, MPI_Wtime(), &result);
  return result;
}

napi_value ModuleInit(napi_env env, napi_value exports) {
  const napi_property_descriptor properties[] = {
      {"init", nullptr, Init, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"finalize", nullptr, Finalize, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"allreduceFloat32", nullptr, AllreduceFloat32, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"broadcast", nullptr, Broadcast, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"barrier", nullptr, Barrier, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gatherBytes", nullptr, GatherBytes, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"abort", nullptr, Abort, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"wtime", nullptr, Wtime, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, ModuleInit)
