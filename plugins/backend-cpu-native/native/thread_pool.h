// A small persistent thread pool: the calling thread takes part in every parallel loop, so a
// pool of size 1 has no worker threads at all.
#pragma once

#include <cstdint>
#include <functional>

namespace segkit {

/** Number of threads (caller included) used by parallel loops. */
int numThreads();

/** Resizes the pool; n < 1 means the machine's hardware concurrency. */
void setNumThreads(int n);

/**
 * Runs task(i) for every i in [0, count), spread over the pool; returns when all are done.
 * Called from inside a task it runs serially (no nested parallelism).
 */
void parallelFor(int64_t count, const std::function<void(int64_t)>& task);

/**
 * Splits [0, total) into contiguous ranges of at least minGrain items, at most a few per thread,
 * and runs body(begin, end) for each in parallel.
 */
void parallelRanges(int64_t total, int64_t minGrain, const std::function<void(int64_t, int64_t)>& body);

/**
 * Runs body(image, channelBegin, channelEnd) over disjoint channel slices of every image of an NHWC
 * tensor, in parallel: the work split for scatter-style kernels (gradients), whose writes to
 * different channel slices never overlap.
 */
void forEachImageChannelSlice(int64_t batch, int64_t channels, const std::function<void(int64_t, int64_t, int64_t)>& body);

}  // namespace segkit
