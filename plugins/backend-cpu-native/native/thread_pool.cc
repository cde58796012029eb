#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace segkit {
namespace {

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

/**
 * How long a thread spins for the next parallel loop (a worker) or for the workers to finish (the
 * caller) before sleeping on a condition variable. A training step runs hundreds of parallel loops a
 * few microseconds to a millisecond apart; a sleeping worker takes tens of microseconds to wake, about
 * the length of a 256^3 GEMM (0.2 ms on 2 cores). Bounded, so an idle addon costs no CPU.
 */
constexpr std::chrono::microseconds kSpin{100};

/** Spins until done() or kSpin has passed; true if done() came true. */
template <typename Done>
bool spinUntil(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpuRelax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= deadline) return done();
  }
}

thread_local bool insideParallelTask = false;

class ThreadPool {
 public:
  explicit ThreadPool(int size) : size_(size) {
    for (int i = 1; i < size; ++i) workers_.emplace_back([this] { workerLoop(); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  int size() const { return size_; }

  void run(int64_t count, const std::function<void(int64_t)>& task) {
    Job job{&task, count};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      current_ = &job;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    drain(job);
    // Wait only for workers that joined this job (they are running tasks right now); a worker the
    // OS has not scheduled yet finds no job when it wakes, so a busy machine adds no latency here.
    {
      std::lock_guard<std::mutex> lock(mutex_);
      current_ = nullptr;
    }
    if (spinUntil([&] { return job.activeWorkers.load(std::memory_order_acquire) == 0; })) return;
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return job.activeWorkers.load(std::memory_order_acquire) == 0; });
  }

 private:
  struct Job {
    const std::function<void(int64_t)>* task;
    int64_t count;
    std::atomic<int64_t> next{0};
    std::atomic<int> activeWorkers{0};  // joined under mutex_ while the job is current
  };

  static void drain(Job& job) {
    insideParallelTask = true;
    for (int64_t i = job.next.fetch_add(1); i < job.count; i = job.next.fetch_add(1)) (*job.task)(i);
    insideParallelTask = false;
  }

  void workerLoop() {
    uint64_t seenGeneration = 0;
    for (;;) {
      spinUntil([&] { return generation_.load(std::memory_order_acquire) != seenGeneration; });
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_.load(std::memory_order_relaxed) != seenGeneration; });
        if (stopping_) return;
        seenGeneration = generation_.load(std::memory_order_relaxed);
        job = current_;
        if (!job) continue;  // woke too late: the caller already finished that job
        job->activeWorkers.fetch_add(1, std::memory_order_relaxed);
      }
      drain(*job);
      // The caller may return (and the job go away) as soon as the count reaches zero: the notify
      // touches only the pool, under the mutex so a caller about to sleep cannot miss it.
      if (job->activeWorkers.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  const int size_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  Job* current_ = nullptr;  // guarded by mutex_
  std::atomic<uint64_t> generation_{0};  // changed under mutex_, read by spinning workers without it
  bool stopping_ = false;
};

int defaultThreadCount() {
  if (const char* fromEnv = std::getenv("SEGKIT_NUM_THREADS")) {
    const int n = std::atoi(fromEnv);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::unique_ptr<ThreadPool>& pool() {
  static std::unique_ptr<ThreadPool> instance = std::make_unique<ThreadPool>(defaultThreadCount());
  return instance;
}

std::mutex& runMutex() {
  static std::mutex m;  // one parallel loop at a time (JS calls are synchronous anyway)
  return m;
}

}  // namespace

int numThreads() { return pool()->size(); }

void setNumThreads(int n) {
  std::lock_guard<std::mutex> lock(runMutex());
  const int size = n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (size != pool()->size()) pool() = std::make_unique<ThreadPool>(size);
}

void parallelFor(int64_t count, const std::function<void(int64_t)>& task) {
  if (count <= 0) return;
  if (count == 1 || insideParallelTask || pool()->size() == 1) {
    for (int64_t i = 0; i < count; ++i) task(i);
    return;
  }
  std::lock_guard<std::mutex> lock(runMutex());
  pool()->run(count, task);
}

void parallelRanges(int64_t total, int64_t minGrain, const std::function<void(int64_t, int64_t)>& body) {
  if (total <= 0) return;
  const int64_t maxChunks = static_cast<int64_t>(numThreads()) * 4;
  const int64_t chunks = std::max<int64_t>(1, std::min(maxChunks, total / std::max<int64_t>(1, minGrain)));
  const int64_t chunkSize = (total + chunks - 1) / chunks;
  parallelFor(chunks, [&](int64_t chunk) {
    const int64_t begin = chunk * chunkSize;
    const int64_t end = std::min(total, begin + chunkSize);
    if (begin < end) body(begin, end);
  });
}

void forEachImageChannelSlice(int64_t batch, int64_t channels, const std::function<void(int64_t, int64_t, int64_t)>& body) {
  // Enough slices to keep every thread busy, but at least 8 channels each so inner loops vectorise.
  const int64_t wantedSlices = (numThreads() * 2 + batch - 1) / std::max<int64_t>(1, batch);
  const int64_t slicesPerImage = std::max<int64_t>(1, std::min(wantedSlices, channels / 8));
  const int64_t sliceWidth = (channels + slicesPerImage - 1) / slicesPerImage;
  parallelFor(batch * slicesPerImage, [&](int64_t task) {
    const int64_t image = task / slicesPerImage;
    const int64_t begin = (task % slicesPerImage) * sliceWidth;
    const int64_t end = std::min(channels, begin + sliceWidth);
    if (begin < end) body(image, begin, end);
  });
}

}  // namespace segkit
