// A pool of large CPU buffers for the kernel's per-call tensors: projections and gates, per-step states,
// outputs, dZ and the products of matmul_nt.
//
// Why: a training step allocates and frees tens of MB (medium: ~22 MB in the forward, ~13 MB of dZ). glibc
// serves such blocks from the top of its heap (or maps them, from its mmap threshold on) and gives the top
// back to the system as soon as more than its trim threshold is free there, so the next step faults the same
// pages in again, one 4 KiB page at a time, zeroed by the kernel (seen: 770-1,060 faults per bf16 training
// forward on the medium config, ~1.2 us each here). Keeping our own freed blocks avoids that without changing
// the process's allocator: training steps that faulted ran 1-10 % faster (benchmarks/buffer_pool.py).
//
// Behaviour: requests of kPoolMinBytes and more are rounded up to whole pages and served best fit from the
// cached blocks (at most a quarter larger than asked; of equal sizes the last freed, the likeliest still in
// cache), else freshly from c10's CPU allocator (blocks of
// 32 MiB and more are also advised for transparent huge pages). A freed block is cached while the cache
// stays within its limit (default 512 MiB; LSTM_BRIDGE_POOL_MIB, applied by native/loader.py; 0 turns pooling
// off), else handed back at once.
// lstm_bridge.engine.native.release_workspace() empties it. Thread-safe: tensors may die on any thread.
#include "buffer_pool.h"

#include <ATen/EmptyTensor.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <map>
#include <mutex>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace lstm_bridge {
namespace {

constexpr size_t kPage = 4096;
constexpr int64_t kDefaultLimitMiB = 512;

struct Block {
  void* ptr;
  size_t size;
};

void advise_huge(void* ptr, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  if (bytes < (size_t(32) << 20)) return;
  const uintptr_t p = reinterpret_cast<uintptr_t>(ptr);
  const uintptr_t start = (p + kHuge - 1) & ~(kHuge - 1), end = (p + bytes) & ~(kHuge - 1);
  if (end > start) (void)madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);  // advice only
#else
  (void)ptr;
  (void)bytes;
#endif
}

class BufferPool final : public c10::Allocator {
 public:
  BufferPool() = default;

  c10::DataPtr allocate(size_t n) override {
    if (n < static_cast<size_t>(kPoolMinBytes)) return c10::GetDefaultCPUAllocator()->allocate(n);
    const size_t size = (n + kPage - 1) / kPage * kPage;
    void* ptr = nullptr;
    size_t got = size;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= size + size / 4) {
        it = std::prev(free_.upper_bound(it->first));  // equal sizes keep their freeing order: the last one
        got = it->first;
        ptr = it->second;
        free_.erase(it);
        cached_ -= static_cast<int64_t>(got);
        ++reused_;
      } else {
        ++fresh_;
      }
    }
    if (ptr == nullptr) {
      ptr = c10::alloc_cpu(size);
      advise_huge(ptr, size);
    }
    return {ptr, new Block{ptr, got}, &BufferPool::give_back, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  PoolStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    PoolStats s;
    s.cached_bytes = cached_;
    s.cached_blocks = static_cast<int64_t>(free_.size());
    s.limit_bytes = limit_;
    s.reused = reused_;
    s.fresh = fresh_;
    return s;
  }

  void set_limit(int64_t bytes) {
    std::multimap<size_t, void*> drop;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      limit_ = std::max<int64_t>(0, bytes);
      while (cached_ > limit_ && !free_.empty()) {  // largest first
        auto last = std::prev(free_.end());
        cached_ -= static_cast<int64_t>(last->first);
        drop.insert(*last);
        free_.erase(last);
      }
    }
    for (auto& b : drop) c10::free_cpu(b.second);
  }

  void lock() { mutex_.lock(); }
  void unlock() { mutex_.unlock(); }

  void release() {
    std::multimap<size_t, void*> drop;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      drop.swap(free_);
      cached_ = 0;
    }
    for (auto& b : drop) c10::free_cpu(b.second);
  }

 private:
  static void give_back(void* ctx);

  void keep_or_free(Block* b) {
    bool kept = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + static_cast<int64_t>(b->size) <= limit_) {
        free_.emplace(b->size, b->ptr);
        cached_ += static_cast<int64_t>(b->size);
        kept = true;
      }
    }
    if (!kept) c10::free_cpu(b->ptr);
    delete b;
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> free_;  // cached blocks by size
  int64_t cached_ = 0;
  int64_t limit_ = kDefaultLimitMiB << 20;  // (the loader applies LSTM_BRIDGE_POOL_MIB: native/pool.py)
  int64_t reused_ = 0;
  int64_t fresh_ = 0;
};

// Never destroyed: tensors may be freed during interpreter teardown, after static destructors ran. Forks hold
// the pool's lock across fork() (pthread_atfork), so a child never inherits it taken by a thread it lacks (a
// DataLoader worker forked while another thread freed a tensor would otherwise deadlock on its first call).
BufferPool& pool() {
  static BufferPool* p = [] {
    auto* made = new BufferPool();
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork([] { pool().lock(); }, [] { pool().unlock(); }, [] { pool().unlock(); });
#endif
    return made;
  }();
  return *p;
}

void BufferPool::give_back(void* ctx) { pool().keep_or_free(static_cast<Block*>(ctx)); }

}  // namespace

at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& opts) {
  return at::Tensor(at::detail::empty_generic(sizes, &pool(), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                              c10::typeMetaToScalarType(opts.dtype()), c10::nullopt));
}

PoolStats pool_stats() { return pool().stats(); }

void pool_release() { pool().release(); }

void pool_set_limit(int64_t bytes) { pool().set_limit(bytes); }

}  // namespace lstm_bridge
