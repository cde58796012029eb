// Scratch memory for one kernel call, kept between calls.
#pragma once

#include <cstddef>
#include <cstdint>

namespace segkit {

/**
 * Uninitialised, 64-byte aligned floats for the duration of one kernel call (transformed filters,
 * packed operands, im2col columns). On destruction the block goes back to a cache of the calling
 * thread, and the next call of the same layer (the next iteration) takes it again: a fresh block of
 * a few MB is fresh mmap'd pages, whose page faults and zeroing cost as much as a small layer's
 * arithmetic (b4 8x8 256->128 Winograd forward: half its time). Blocks above kMaxCachedBytes, and
 * the least recently released ones past kMaxCachedTotalBytes, are freed, so the cache adds a
 * bounded amount to a process's memory.
 */
class Workspace {
 public:
  explicit Workspace(int64_t floats);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  float* get() const { return data_; }

  static constexpr size_t kMaxCachedBytes = size_t{16} << 20;
  static constexpr size_t kMaxCachedTotalBytes = size_t{64} << 20;

 private:
  float* data_;
  size_t bytes_;
};

}  // namespace segkit
