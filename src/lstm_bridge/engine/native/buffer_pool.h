// The kernel's pool of large CPU buffers (see buffer_pool.cpp for why it exists and how it behaves).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace lstm_bridge {

// Blocks this size and larger come from the pool; smaller requests go to c10's CPU allocator as before.
constexpr int64_t kPoolMinBytes = int64_t(256) << 10;

// A new uninitialised CPU tensor of `sizes` (contiguous) in opts' dtype whose storage comes from the pool:
// a block freed by an earlier tensor of a size within a quarter of it is handed out again. The storage is
// resizable (resizing takes a new block from the pool) and behaves as any CPU tensor's.
at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& opts);

struct PoolStats {
  int64_t cached_bytes = 0;   // held by the pool, free for reuse
  int64_t cached_blocks = 0;
  int64_t limit_bytes = 0;    // the most it holds free (0: pooling off, every block goes back at once)
  int64_t reused = 0;         // requests served from cached blocks since the process started
  int64_t fresh = 0;          // requests that needed a new block
};

PoolStats pool_stats();
// Hand every cached block back to the system allocator (tensors still alive keep theirs).
void pool_release();
// The most bytes the pool keeps free; lowering it releases cached blocks beyond it. 0 turns pooling off.
void pool_set_limit(int64_t bytes);

}  // namespace lstm_bridge
