#include "workspace.h"

#include <cstdlib>
#include <new>
#include <vector>

namespace segkit {
namespace {

struct CachedBlock {
  float* data;
  size_t bytes;
  uint64_t releasedAt;
};

/** One thread's released blocks; a handful at a time (the buffers of one kernel call), so linear scans. */
class BlockCache {
 public:
  ~BlockCache() {
    for (const CachedBlock& block : blocks_) std::free(block.data);
  }

  /** The smallest cached block of at least `bytes` and at most 1.25x that (not to waste a big one on a small call). */
  float* take(size_t bytes, size_t& capacity) {
    size_t best = blocks_.size();
    for (size_t i = 0; i < blocks_.size(); ++i) {
      const size_t size = blocks_[i].bytes;
      if (size >= bytes && size - bytes <= bytes / 4 && (best == blocks_.size() || size < blocks_[best].bytes)) best = i;
    }
    if (best == blocks_.size()) return nullptr;
    float* data = blocks_[best].data;
    capacity = blocks_[best].bytes;
    total_ -= capacity;
    blocks_[best] = blocks_.back();
    blocks_.pop_back();
    return data;
  }

  void give(float* data, size_t bytes) {
    if (bytes > Workspace::kMaxCachedBytes) {
      std::free(data);
      return;
    }
    blocks_.push_back({data, bytes, ++clock_});
    total_ += bytes;
    while (total_ > Workspace::kMaxCachedTotalBytes) {
      size_t oldest = 0;
      for (size_t i = 1; i < blocks_.size(); ++i)
        if (blocks_[i].releasedAt < blocks_[oldest].releasedAt) oldest = i;
      total_ -= blocks_[oldest].bytes;
      std::free(blocks_[oldest].data);
      blocks_[oldest] = blocks_.back();
      blocks_.pop_back();
    }
  }

 private:
  std::vector<CachedBlock> blocks_;
  size_t total_ = 0;
  uint64_t clock_ = 0;
};

BlockCache& threadCache() {
  thread_local BlockCache cache;
  return cache;
}

}  // namespace

Workspace::Workspace(int64_t floats) {
  const size_t bytes = (sizeof(float) * static_cast<size_t>(floats > 0 ? floats : 1) + 63) / 64 * 64;
  data_ = threadCache().take(bytes, bytes_);
  if (data_) return;
  data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!data_) throw std::bad_alloc();
  bytes_ = bytes;
}

Workspace::~Workspace() { threadCache().give(data_, bytes_); }

}  // namespace segkit
