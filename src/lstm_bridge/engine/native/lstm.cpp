// lstm-bridge native CPU kernel: fused recurrence, forward and backward. Shape contract in lstm.h.
//
// Work items are (direction, block of batch rows); each runs on one thread through all T steps, so the
// time loop never synchronises. Per step: one recurrent GEMM that accumulates W_hh h straight into the
// step's pre-activations (our micro-kernel over W_hh packed once per call, or MKL packed, or at::mm),
// then one pointwise pass per row (vectorised with at::vec): activations, cell update, mask select,
// carry/zero output, recurrent dropout of the next h. Nothing is allocated inside the time loop.
#include "lstm.h"

#include "family.h"
#include "kernel_common.h"
#include "buffer_pool.h"

#include <c10/util/BFloat16.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define LSTM_BRIDGE_X86 1
#endif

namespace lstm_bridge {
namespace {

// ---- bf16 GEMM operands (LayerConfig::bf16) ------------------------------------------------------
// The recurrent GEMM with both operands rounded to bfloat16 (round to nearest even) and float32
// accumulation into the float32 pre-activations; everything else in the step stays float32.
// W is packed once per call as bf16 pairs along K: in panel p (kBf16NR = 64 columns), the uint32 at
// (k-pair j, column c) holds W^T[2j][c] in its low and W^T[2j+1][c] in its high half (K padded to
// even with zeros). A (M, K) float32 is rounded per call into the same pair layout (a bfloat16 A with
// even K already is that layout), so one broadcast 32-bit A pair times one packed B vector is exactly
// one _mm512_dpbf16_ps (AVX512_BF16). Without that instruction an exact float emulation runs (bf16 ->
// float32 is a 16-bit shift; the products of two bf16 values are exact in float32), so the results
// differ only in the order of the float32 sums.
constexpr int64_t kBf16NR = 64;   // 4 x 16 float32 lanes
constexpr int kBf16MR = 6;        // at most 24 accumulators + 4 B vectors + 1 broadcast of the 32 zmm registers
constexpr int64_t kBf16KC = 128;  // K pairs per block (see bf16_gemm_pairs)

struct Bf16Gemm {
  int64_t n = 0, k = 0, kp = 0, panels = 0;
  at::Tensor buffer;                     // owns the packed pairs
  std::vector<const uint32_t*> parts;    // per piece: 1, or 4 for per-gate masks
  bool active() const { return !parts.empty(); }
};

inline uint32_t bf16_bits(float v) { return c10::BFloat16(v).x; }

inline uint32_t bf16_pair(float lo, float hi) { return bf16_bits(lo) | (bf16_bits(hi) << 16); }

// 16 lanes of uint32 (GCC vector type: AVX-512 where built for it, else split by the compiler).
typedef uint32_t Bf16Lanes __attribute__((vector_size(64)));

// The bf16 bits of 16 float32 bit patterns, in the high half of each lane (low half zero): exactly
// c10::BFloat16's rounding (to nearest even; any NaN -> 0x7FC0).
inline Bf16Lanes bf16_high(Bf16Lanes u) {
  const Bf16Lanes rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  const Bf16Lanes nan = (Bf16Lanes)((u & 0x7FFFFFFFu) > 0x7F800000u);
  return (rounded & ~nan) | (nan & 0x7FC00000u);
}

inline Bf16Lanes load_lanes(const float* p) {
  Bf16Lanes v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// out[j] = bf16 pair (a[2j], a[2j+1]) for j < ceil(k / 2), a contiguous float32 row of k values; a zero
// high half past k.
inline void round_pairs(const float* a, int64_t k, uint32_t* out) {
  const int64_t full = k / 2;
  int64_t j = 0;
  for (; j + 16 <= full; j += 16) {
    const Bf16Lanes h0 = bf16_high(load_lanes(a + 2 * j)), h1 = bf16_high(load_lanes(a + 2 * j + 16));
#if defined(__clang__)
    const Bf16Lanes even = __builtin_shufflevector(h0, h1, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const Bf16Lanes odd = __builtin_shufflevector(h0, h1, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
#else
    const Bf16Lanes even = __builtin_shuffle(h0, h1, Bf16Lanes{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30});
    const Bf16Lanes odd = __builtin_shuffle(h0, h1, Bf16Lanes{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31});
#endif
    const Bf16Lanes pairs = (even >> 16) | odd;
    std::memcpy(out + j, &pairs, sizeof(pairs));
  }
  for (; j < full; ++j) out[j] = bf16_pair(a[2 * j], a[2 * j + 1]);
  if (full * 2 < k) out[full] = bf16_pair(a[k - 1], 0.0f);
}

// The same from a contiguous bfloat16 row (its values are already bf16: only odd k needs a copy).
inline void copy_pairs(const uint16_t* a, int64_t k, uint32_t* out) {
  const int64_t full = k / 2;
  std::memcpy(out, a, sizeof(uint32_t) * full);
  if (full * 2 < k) out[full] = a[k - 1];
}

// Same pieces and (n, k) as pack_kernel_weights: forward B[k][n] = W[row0 + n][k] (N = 4H, K = H, or
// per gate N = K = H); backward B[k][n] = W[row0 + k][n] (K = all of W's rows, or H per gate; N = H).
// Where B's k or n has unit stride in W (a contiguous W or its transpose, e.g. a Keras (H, 4H)
// recurrent kernel seen as W_hh), 16 lanes are rounded at a time (bit for bit the scalar rounding).
Bf16Gemm pack_bf16_weights(const at::Tensor& w, int64_t G, bool forward) {
  TORCH_CHECK(w.scalar_type() == at::kFloat, "lstm-bridge native: bf16 GEMM operands need float32 weights; received ",
              w.scalar_type());
  Bf16Gemm g;
  const int64_t H = w.size(1);
  const int64_t pieces = G == 4 ? 4 : 1;
  g.n = forward ? (pieces == 4 ? H : w.size(0)) : H;
  g.k = forward ? H : (pieces == 4 ? H : w.size(0));
  g.kp = (g.k + 1) / 2;
  g.panels = (g.n + kBf16NR - 1) / kBf16NR;
  const int64_t piece_size = g.panels * g.kp * kBf16NR;
  g.buffer = at::empty({pieces * piece_size}, w.options().dtype(at::kInt));
  uint32_t* dst = reinterpret_cast<uint32_t*>(g.buffer.data_ptr<int32_t>());
  const float* W = w.data_ptr<float>();
  const int64_t s0 = w.stride(0), n = g.n, k = g.k, kp = g.kp, panels = g.panels;
  const int64_t sk = forward ? w.stride(1) : s0, sn = forward ? s0 : w.stride(1);  // B[k][n] = base[k*sk + n*sn]
  at::parallel_for(0, pieces * panels, std::max<int64_t>(1, 65536 / (kp * kBf16NR)), [&](int64_t i0, int64_t i1) {
    std::vector<uint32_t> row(static_cast<size_t>(kp));
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t q = item / panels, p = item % panels;
      const float* base = W + (pieces == 4 ? q * H : 0) * s0;
      uint32_t* panel = dst + q * piece_size + p * kp * kBf16NR;
      const int64_t cols = std::min<int64_t>(kBf16NR, n - p * kBf16NR);
      if (sn == 1 && cols == kBf16NR) {  // pair j: 64 consecutive values of B's rows 2j and 2j+1
        for (int64_t j = 0; j < kp; ++j) {
          const float* lo = base + 2 * j * sk + p * kBf16NR;
          const bool has_hi = 2 * j + 1 < k;
          for (int64_t v = 0; v < kBf16NR / 16; ++v) {
            const Bf16Lanes l = bf16_high(load_lanes(lo + 16 * v));
            const Bf16Lanes pairs = (l >> 16) | (has_hi ? bf16_high(load_lanes(lo + sk + 16 * v)) : Bf16Lanes{});
            std::memcpy(panel + j * kBf16NR + 16 * v, &pairs, sizeof(pairs));
          }
        }
        continue;
      }
      if (sk == 1) {  // column c of the panel: a contiguous run of k values, rounded in one go
        for (int64_t c = 0; c < kBf16NR; ++c) {
          if (c < cols) {
            round_pairs(base + (p * kBf16NR + c) * sn, k, row.data());
          } else {
            std::fill(row.begin(), row.end(), 0u);
          }
          for (int64_t j = 0; j < kp; ++j) panel[j * kBf16NR + c] = row[j];
        }
        continue;
      }
      auto val = [&](int64_t kk, int64_t nn) -> float {
        return kk >= k || nn >= n ? 0.0f : base[kk * sk + nn * sn];
      };
      for (int64_t j = 0; j < kp; ++j) {
        for (int64_t c = 0; c < kBf16NR; ++c) {
          const int64_t nn = p * kBf16NR + c;
          panel[j * kBf16NR + c] = bf16_pair(val(2 * j, nn), val(2 * j + 1, nn));
        }
      }
    }
  });
  for (int64_t q = 0; q < pieces; ++q) g.parts.push_back(dst + q * piece_size);
  return g;
}

// Stores the MR x 64 accumulator block (float32) into C, adding C's values when accumulating, then the
// bias of these columns when given: (C + acc) + bias.
template <int MR>
inline void store_block(float (*acc)[kBf16NR], float* C, int64_t ldc, int64_t ncols, bool accumulate,
                        const float* bias) {
  for (int r = 0; r < MR; ++r) {
    float* c = C + r * ldc;
    const float* a = acc[r];
    if (accumulate) {
      for (int64_t j = 0; j < ncols; ++j) c[j] = c[j] + a[j];
    } else {
      std::memcpy(c, a, sizeof(float) * ncols);
    }
    if (bias != nullptr) {
      for (int64_t j = 0; j < ncols; ++j) c[j] = c[j] + bias[j];
    }
  }
}

#ifdef LSTM_BRIDGE_X86
// C(MR rows, one 64-column panel) (+)= A(MR, 2kp) Bp with _mm512_dpbf16_ps.
template <int MR>
__attribute__((target("avx512f,avx512bf16"))) void micro_bf16_dp(int64_t kp, const uint32_t* A, int64_t lda,
                                                                 const uint32_t* Bp, float* C, int64_t ldc,
                                                                 int64_t ncols, bool accumulate, const float* bias) {
  __m512 acc[MR][4];
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < kp; ++j) {
    const uint32_t* b = Bp + j * kBf16NR;
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 16);
    const __m512bh b2 = (__m512bh)_mm512_loadu_si512(b + 32);
    const __m512bh b3 = (__m512bh)_mm512_loadu_si512(b + 48);
    for (int r = 0; r < MR; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(A[r * lda + j]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], a, b2);
      acc[r][3] = _mm512_dpbf16_ps(acc[r][3], a, b3);
    }
  }
  if (ncols == kBf16NR) {
    for (int r = 0; r < MR; ++r) {
      float* c = C + r * ldc;
      for (int v = 0; v < 4; ++v) {
        const __m512 sum = accumulate ? _mm512_add_ps(_mm512_loadu_ps(c + 16 * v), acc[r][v]) : acc[r][v];
        _mm512_storeu_ps(c + 16 * v, bias != nullptr ? _mm512_add_ps(sum, _mm512_loadu_ps(bias + 16 * v)) : sum);
      }
    }
    return;
  }
  float tmp[MR][kBf16NR];
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(tmp[r] + 16 * v, acc[r][v]);
  }
  store_block<MR>(tmp, C, ldc, ncols, accumulate, bias);
}

bool has_bf16_dot() {
  static const bool yes = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f");
  return yes;
}
#else
bool has_bf16_dot() { return false; }
#endif

// The same block without AVX512_BF16: bf16 -> float32 by shifting, products exact, float32 sums.
template <int MR>
__attribute__((optimize("fp-contract=fast"))) void micro_bf16_emulated(int64_t kp, const uint32_t* A,
                                                                       int64_t lda, const uint32_t* Bp,
                                                                       float* C, int64_t ldc, int64_t ncols,
                                                                       bool accumulate, const float* bias) {
  typedef float VF __attribute__((vector_size(64)));
  typedef uint32_t VU __attribute__((vector_size(64)));
  VF acc[MR][4];
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < 4; ++v) acc[r][v] = VF{};
  }
  const VU mask_hi = VU{} + 0xFFFF0000u;
  for (int64_t j = 0; j < kp; ++j) {
    VF lo[4], hi[4];
    for (int v = 0; v < 4; ++v) {
      VU b;
      __builtin_memcpy(&b, Bp + j * kBf16NR + 16 * v, sizeof(VU));
      const VU bl = b << 16, bh = b & mask_hi;
      __builtin_memcpy(&lo[v], &bl, sizeof(VF));
      __builtin_memcpy(&hi[v], &bh, sizeof(VF));
    }
    for (int r = 0; r < MR; ++r) {
      const uint32_t a = A[r * lda + j];
      const uint32_t al = a << 16, ah = a & 0xFFFF0000u;
      float fl, fh;
      std::memcpy(&fl, &al, sizeof(float));
      std::memcpy(&fh, &ah, sizeof(float));
      for (int v = 0; v < 4; ++v) acc[r][v] += lo[v] * fl + hi[v] * fh;
    }
  }
  float tmp[MR][kBf16NR];
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < 4; ++v) __builtin_memcpy(tmp[r] + 16 * v, &acc[r][v], sizeof(VF));
  }
  store_block<MR>(tmp, C, ldc, ncols, accumulate, bias);
}

template <int MR>
inline void micro_bf16(int64_t kp, const uint32_t* A, int64_t lda, const uint32_t* Bp, float* C, int64_t ldc,
                       int64_t ncols, bool accumulate, const float* bias) {
#ifdef LSTM_BRIDGE_X86
  if (has_bf16_dot()) {
    micro_bf16_dp<MR>(kp, A, lda, Bp, C, ldc, ncols, accumulate, bias);
    return;
  }
#endif
  micro_bf16_emulated<MR>(kp, A, lda, Bp, C, ldc, ncols, accumulate, bias);
}

// One row tile of 1..kBf16MR rows.
inline void micro_bf16_rows(int64_t rows, int64_t kp, const uint32_t* A, int64_t lda, const uint32_t* Bp, float* C,
                            int64_t ldc, int64_t ncols, bool accumulate, const float* bias) {
  switch (rows) {
    case 6: micro_bf16<6>(kp, A, lda, Bp, C, ldc, ncols, accumulate, bias); break;
    case 5: micro_bf16<5>(kp, A, lda, Bp, C, ldc, ncols, accumulate, bias); break;
    case 4: micro_bf16<4>(kp, A, lda, Bp, C, ldc, ncols, accumulate, bias); break;
    case 3: micro_bf16<3>(kp, A, lda, Bp, C, ldc, ncols, accumulate, bias); break;
    case 2: micro_bf16<2>(kp, A, lda, Bp, C, ldc, ncols, accumulate, bias); break;
    default: micro_bf16<1>(kp, A, lda, Bp, C, ldc, ncols, accumulate, bias); break;
  }
}

// C(M, n) (+)= A(M, k) B (+ bias (n), when given, added last) for g's piece q, A given as bf16 pairs (row
// stride lda pairs, g.kp used).
// M rows go in ceil(M / 6) tiles of near-equal height (32 = 6+6+5+5+5+5): a tile of 1-3 rows keeps too
// few accumulators in flight to hide vdpbf16ps's latency (5 + 5 + 5 + 5 + 6 + 6, not 6 x 5 + 2).
void bf16_gemm_pairs(const Bf16Gemm& g, int q, int64_t M, const uint32_t* ap, int64_t lda, bool accumulate,
                     float* C, int64_t ldc, const float* bias = nullptr) {
  const int64_t kp = g.kp;
  const uint32_t* piece = g.parts[q];
  const int64_t tiles = (M + kBf16MR - 1) / kBf16MR;
  // K in blocks of kBf16KC pairs: a block of a panel (kBf16KC x 64 pairs, 32 KiB) stays in L1 while every
  // row tile passes over it (a whole panel of a 512-deep K is 64 KiB: streamed from L2 per tile otherwise)
  for (int64_t k0 = 0; k0 < kp; k0 += kBf16KC) {
    const int64_t kc = std::min<int64_t>(kBf16KC, kp - k0);
    const bool acc = accumulate || k0 > 0;
    const bool last = k0 + kc >= kp;
    for (int64_t p = 0; p < g.panels; ++p) {
      const uint32_t* Bp = piece + p * kp * kBf16NR + k0 * kBf16NR;
      const int64_t ncols = std::min<int64_t>(kBf16NR, g.n - p * kBf16NR);
      float* Cp = C + p * kBf16NR;
      const float* bp = last && bias != nullptr ? bias + p * kBf16NR : nullptr;
      for (int64_t t = 0, m = 0; t < tiles; ++t) {
        const int64_t rows = (M - m) / (tiles - t);  // the later tiles take the remainder's extra rows
        micro_bf16_rows(rows, kc, ap + m * lda + k0, lda, Bp, Cp + m * ldc, ldc, ncols, acc, bp);
        m += rows;
      }
    }
  }
}

// The same with A float32 (row stride lda), rounded to bf16 pairs first (into a per-thread buffer:
// each work item runs on one thread).
void bf16_gemm(const Bf16Gemm& g, int q, int64_t M, const float* A, int64_t lda, bool accumulate, float* C,
               int64_t ldc, const float* bias = nullptr) {
  thread_local std::vector<uint32_t> pairs;
  const int64_t kp = g.kp;
  if (static_cast<int64_t>(pairs.size()) < M * kp) pairs.resize(M * kp);
  uint32_t* ap = pairs.data();
  for (int64_t m = 0; m < M; ++m) round_pairs(A + m * lda, g.k, ap + m * kp);
  bf16_gemm_pairs(g, q, M, ap, kp, accumulate, C, ldc, bias);
}

// The recurrent GEMM of a step: bf16 operands when the direction holds a bf16 pack (T = float only),
// else the packed path of kernel_common.h.
template <typename T>
inline void step_gemm(const Bf16Gemm& lowp, const RecGemm<T>& packed, int q, int64_t M, const T* A, int64_t lda,
                      bool accumulate, T* C, int64_t ldc, const T* next_c = nullptr) {
  if constexpr (std::is_same<T, float>::value) {
    if (lowp.active()) {
      bf16_gemm(lowp, q, M, A, lda, accumulate, C, ldc);
      return;
    }
  }
  rec_gemm<T>(packed, q, M, A, lda, accumulate, C, ldc, next_c);
}

// ---- a bf16 layer's tanh and sigmoid ------------------------------------------------------------------
// tanh as the clamped odd/even rational function (degree 13 / 6) of Eigen's and XLA's fast float32 tanh,
// sigmoid(x) = 0.5 tanh(x / 2) + 0.5 from it: |error| < 3e-7, while a bf16 layer's GEMM operands carry
// bf16's 2^-9; 2.7x faster than Sleef's 3.5-ulp tanh here (the largest cost of a step outside the GEMMs).
// A float32/float64 layer keeps apply_act's functions: for float32 this tanh was measured (stop 21) 3-5 % faster
// per layer but up to 4.9 ulp off where Sleef's is 2.8, and gradients through nearly saturated units, 1 - y^2,
// amplify that (docs/benchmarks.md, "measured and not kept").

__attribute__((optimize("fp-contract=fast"))) inline F32x16 rational_tanh16(F32x16 a, bool sigmoid) {
  if (sigmoid) a = a * 0.5f;
  const float c = 7.90531110763549805f;  // beyond, tanh is 1 within 3e-7: the clamp keeps p / q finite
  F32x16 x = a > c ? F32x16{} + c : a;
  x = x < -c ? F32x16{} - c : x;
  const F32x16 x2 = x * x;
  F32x16 p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = x2 * p + -8.60467152213735e-11f;
  p = x2 * p + 5.12229709037114e-08f;
  p = x2 * p + 1.48572235717979e-05f;
  p = x2 * p + 6.37261928875436e-04f;
  p = x2 * p + 4.89352455891786e-03f;
  p = x * p;
  F32x16 q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = x2 * q + 2.26843463243900e-03f;
  q = x2 * q + 4.89352518554385e-03f;
  const F32x16 abs_a = a < 0.0f ? -a : a;
  F32x16 t = abs_a < 0.0004f ? a : p / q;  // tanh(x) = x to float32 precision there
  if (sigmoid) t = t * 0.5f + 0.5f;
  return t;
}

__attribute__((optimize("fp-contract=fast"))) void rational_tanh(const float* src, float* dst, int64_t n,
                                                                 bool sigmoid) {
  // (the lambda carries the contraction setting too, so that rational_tanh16 inlines into it)
  map_lanes16(src, dst, n, [sigmoid](F32x16 v) __attribute__((optimize("fp-contract=fast"))) {
    return rational_tanh16(v, sigmoid);
  });
}

// The activation of a step: a bf16 layer's tanh/sigmoid (rational_tanh), else apply_act's.
template <typename T>
inline void step_act(bool lowp, int64_t id, const T* src, T* dst, int64_t n) {
  if constexpr (std::is_same<T, float>::value) {
    if (lowp && (id == kTanh || id == kSigmoid)) {
      rational_tanh(src, dst, n, id == kSigmoid);
      return;
    }
  }
  apply_act<T>(id, src, dst, n);
}

// A bf16 layer's backward (cfg.bf16): one row's pre-activation gradients dz (n = 4H float32 values) rounded
// to bf16 into its row of the bfloat16 dZ, as the pairs the micro-kernel reads (n is even), and added to the
// row's float32 bias-gradient sums db.
inline void store_dz_bf16(const float* __restrict dz, int64_t n, uint32_t* __restrict pairs, float* __restrict db) {
  round_pairs(dz, n, pairs);
  for (int64_t j = 0; j < n; ++j) db[j] = db[j] + dz[j];
}

// A bf16 layer's output row: n float32 values rounded to bfloat16 (c10::BFloat16's rounding, as Tensor.to).
inline void store_row_bf16(const float* y, int64_t n, uint16_t* dst) {
  if (n % 2 == 0 && reinterpret_cast<uintptr_t>(dst) % alignof(uint32_t) == 0) {
    round_pairs(y, n, reinterpret_cast<uint32_t*>(dst));
    return;
  }
  for (int64_t j = 0; j < n; ++j) dst[j] = static_cast<uint16_t>(bf16_bits(y[j]));
}

// Asks for n values at p in L2 (one prefetch per 64-byte line).
template <typename T>
inline void prefetch_l2(const T* p, int64_t n) {
  for (int64_t j = 0; j < n; j += 64 / static_cast<int64_t>(sizeof(T))) __builtin_prefetch(p + j, 0, 2);
}

// The step GEMM of a bf16 layer's backward, dh (nb rows) = dZ_t W_hh, read straight from the block's bf16
// rows of dZ (pairs, row stride S / 2: S and the column offsets are even). With one recurrent mask per gate
// and an odd H a gate's columns do not start on a pair: those pieces round the block's float32 rows dzs
// (row stride 4H) instead, to the same bf16 values.
void bf16_backward_step(const Bf16Gemm& g, int64_t G, int64_t nb, int64_t H, const uint32_t* pairs, int64_t S,
                        const float* dzs, float* dhg) {
  if (G != 4) {
    bf16_gemm_pairs(g, 0, nb, pairs, S / 2, false, dhg, H);
    return;
  }
  for (int q = 0; q < 4; ++q) {
    if (H % 2 == 0) {
      bf16_gemm_pairs(g, q, nb, pairs + q * H / 2, S / 2, false, dhg + q * nb * H, H);
    } else {
      bf16_gemm(g, q, nb, dzs + q * H, 4 * H, false, dhg + q * nb * H, H);
    }
  }
}

void check_inputs(const LayerConfig& cfg, const at::Tensor& xp, const std::vector<at::Tensor>& w_hh,
                  const at::Tensor& valid, const std::vector<at::Tensor>& rec_mask) {
  const size_t D = w_hh.size();
  TORCH_CHECK(xp.dim() == 3 && xp.is_contiguous() && !xp.is_cuda(),
              "lstm-bridge native: xp must be a contiguous CPU (T, B, S) tensor; received sizes ",
              xp.sizes(), " contiguous=", xp.is_contiguous());
  TORCH_CHECK(cfg.offsets.size() == D && cfg.reverse.size() == D && rec_mask.size() == D,
              "lstm-bridge native: ", D, " directions but ", cfg.offsets.size(), " offsets, ",
              cfg.reverse.size(), " reverse flags and ", rec_mask.size(), " recurrent masks");
  const int64_t T = xp.size(0), B = xp.size(1);
  int64_t S = 0;
  for (size_t d = 0; d < D; ++d) {
    const int64_t H = w_hh[d].size(1);
    TORCH_CHECK(w_hh[d].dim() == 2 && w_hh[d].size(0) == 4 * H && w_hh[d].scalar_type() == xp.scalar_type(),
                "lstm-bridge native: w_hh[", d, "] must be (4H, H) of dtype ", xp.scalar_type(),
                "; received ", w_hh[d].sizes(), " ", w_hh[d].scalar_type());
    TORCH_CHECK(cfg.offsets[d] >= 0 && cfg.offsets[d] + 4 * H <= xp.size(2),
                "lstm-bridge native: direction ", d, " columns [", cfg.offsets[d], ", ",
                cfg.offsets[d] + 4 * H, ") exceed xp's ", xp.size(2));
    S += 4 * H;
    const at::Tensor& m = rec_mask[d];
    if (m.numel() > 0) {
      TORCH_CHECK(m.dim() == 3 && (m.size(0) == 1 || m.size(0) == 4) && m.size(1) == B && m.size(2) == H &&
                      m.is_contiguous() && m.scalar_type() == xp.scalar_type(),
                  "lstm-bridge native: rec_mask[", d, "] must be contiguous (G in {1,4}, ", B, ", ", H,
                  ") of dtype ", xp.scalar_type(), "; received ", m.sizes(), " ", m.scalar_type());
    }
  }
  TORCH_CHECK(S == xp.size(2), "lstm-bridge native: xp has ", xp.size(2), " columns, directions need ", S);
  if (valid.numel() > 0) {
    TORCH_CHECK(valid.dim() == 2 && valid.size(0) == T && valid.size(1) == B &&
                    valid.scalar_type() == at::kByte && valid.is_contiguous(),
                "lstm-bridge native: valid must be a contiguous uint8 (", T, ", ", B, ") tensor; received ",
                valid.sizes(), " ", valid.scalar_type());
  }
}

// Per-direction tensors shared by the items of that direction (each item touches only its rows).
template <typename T>
struct DirData {
  int64_t H = 0, off = 0, G = 0;
  bool reverse = false;
  at::Tensor w;                  // W_hh (4H, H); contiguous unless the kernel GEMM packs it (any strides)
  const T* bias = nullptr;       // forward: (4H) added to the pre-activations, or null (already in xp)
  const T* mask = nullptr;       // (G, B, H) recurrent dropout mask, or null
  at::Tensor s_h, s_c;           // forward: h0, c0 in;  backward: grad h_n, grad c_n in
  at::Tensor r_h, r_c;           // forward: h_n, c_n out; backward: dh0, dc0 out
  at::Tensor out, hprev, cprev;  // forward outputs (T, B, H)
  const T* gout = nullptr;       // backward: grad of out (T, B, H)
  const T* cprev_in = nullptr;   // backward: saved c_prev (T, B, H)
  RecGemm<T> shared_gemm;        // kGemmKernel: packed once per direction, read by all its items
  Bf16Gemm bf16_gemm;            // cfg.bf16: W_hh packed as bf16 pairs, read by all its items
};

// The GEMM an item uses: the direction's shared kernel pack, its own MKL pack (depends on M), or none.
template <typename T>
RecGemm<T> item_gemm(const LayerConfig& cfg, const DirData<T>& r, int64_t M, bool forward) {
  if (cfg.gemm == kGemmMkl && !cfg.bf16) return pack_mkl_weights<T>(r.w, M, r.G, forward);
  return RecGemm<T>{};
}

template <typename T>
int64_t recurrent_work(const std::vector<DirData<T>>& dirs, int64_t Tn, int64_t B) {
  int64_t work = 0;
  for (const auto& r : dirs) work += Tn * B * 4 * r.H * r.H;
  return work;
}

// One row's cell for hidden units [j0, j0 + n): the four gates' activations in place in z (the row's 4H
// pre-activations; i, f, o: gate_act, g: cand_act), cn = f * c + i * g and tc = cell_act(cn) (c, cn and tc start at
// unit j0). forward_rows (all units) and forward_cols (a thread's units) share it.
template <typename T>
inline void cell_forward_units(const LayerConfig& cfg, bool lowp, int64_t H, T* z, const T* c, T* cn, T* tc, int64_t j0,
                               int64_t n) {
  for (int64_t q = 0; q < 4; ++q) {
    T* zq = z + q * H + j0;
    step_act<T>(lowp, q == 2 ? cfg.cand_act : cfg.gate_act, zq, zq, n);
  }
  const T* gi = z + j0;
  const T* gf = z + H + j0;
  const T* gg = z + 2 * H + j0;
  for (int64_t j = 0; j < n; ++j) cn[j] = gf[j] * c[j] + gi[j] * gg[j];
  step_act<T>(lowp, cfg.cell_act, cn, tc, n);
}

// The elementwise tails of a step with many streams, restrict-qualified: with this many pointers GCC
// gives up its run-time alias checks and leaves the loop scalar (seen with -fopt-info-vec).
template <typename T>
inline void emit_state(int64_t n, const T* __restrict go, const T* __restrict tc, const T* __restrict cn,
                       T* __restrict h, T* __restrict c, T* __restrict y) {
  for (int64_t j = 0; j < n; ++j) {
    const T hn = go[j] * tc[j];
    h[j] = hn;
    c[j] = cn[j];
    y[j] = hn;
  }
}

// dz (i, f, g blocks of one row, units [j0, j1)) and the carried dc from dc_t + d(cell output); dpass cleared.
template <typename T>
inline void backprop_cell(int64_t H, int64_t j0, int64_t j1, const T* __restrict dcell, const T* __restrict gi,
                          const T* __restrict gf, const T* __restrict gg, const T* __restrict cp, T* __restrict dz,
                          T* __restrict dc, T* __restrict dpass) {
  for (int64_t j = j0; j < j1; ++j) {
    const T dcn = dc[j] + dcell[j];
    dz[j] = dcn * gg[j];
    dz[H + j] = dcn * cp[j];
    dz[2 * H + j] = dcn * gi[j];
    dc[j] = dcn * gf[j];
    dpass[j] = T(0);
  }
}

// hm(rows) = h * m: the GEMM input under recurrent dropout. Row i of the block is global row b.
template <typename T>
inline void mask_row(const DirData<T>& r, int64_t B, int64_t nb, int64_t i, int64_t b, const T* hb, T* hm) {
  const int64_t H = r.H;
  if (r.G == 1) {
    const T* mb = r.mask + b * H;
    T* dst = hm + i * H;
    for (int64_t j = 0; j < H; ++j) dst[j] = hb[j] * mb[j];
  } else if (r.G == 4) {
    for (int64_t k = 0; k < 4; ++k) {
      const T* mb = r.mask + (k * B + b) * H;
      T* dst = hm + (k * nb + i) * H;
      for (int64_t j = 0; j < H; ++j) dst[j] = hb[j] * mb[j];
    }
  }
}

template <typename T>
void forward_rows(const LayerConfig& cfg, T* xp, int64_t Tn, int64_t B, int64_t S, const uint8_t* vptr,
                  DirData<T>& r, int64_t b0, int64_t b1) {
  const int64_t nb = b1 - b0, H = r.H, G = r.G, off = r.off;
  if (nb <= 0) return;
  const auto opts = r.r_h.options();
  const bool use_yprev = vptr != nullptr && cfg.carry;
  // A bf16 layer (its own tanh/sigmoid: step_act) returns its outputs in bfloat16: each row's y is formed in
  // float32 in y_t (this block's rows) and rounded into out (no float32 (T, B, H) output, no cast after).
  const bool lowp = r.bf16_gemm.active();
  at::Tensor y_t = lowp ? at::empty({nb, H}, opts) : at::Tensor();
  uint16_t* out16 = lowp ? reinterpret_cast<uint16_t*>(r.out.template data_ptr<at::BFloat16>()) : nullptr;
  at::Tensor h_t = r.s_h.narrow(0, b0, nb).clone(at::MemoryFormat::Contiguous);
  at::Tensor c_t = r.s_c.narrow(0, b0, nb).clone(at::MemoryFormat::Contiguous);
  at::Tensor hm_t = G == 4 ? at::empty({4, nb, H}, opts) : (G == 1 ? at::empty({nb, H}, opts) : at::Tensor());
  const RecGemm<T> own = item_gemm<T>(cfg, r, nb, /*forward=*/true);
  const RecGemm<T>& packed = own.active() ? own : r.shared_gemm;
  // fused: the packed GEMM accumulates W_hh h straight into xp[t]; nothing left to add.
  const bool fused = packed.active() || r.bf16_gemm.active();
  at::Tensor rec_t = fused ? at::Tensor() : (G == 4 ? at::empty({4, nb, H}, opts) : at::empty({nb, 4 * H}, opts));
  at::Tensor cn_t = at::empty({nb, H}, opts), tc_t = at::empty({nb, H}, opts);
  const at::Tensor w_t = fused ? at::Tensor() : r.w.t();
  const at::Tensor w_t4 = fused ? at::Tensor() : r.w.view({4, H, H}).transpose(1, 2);
  T* h = h_t.data_ptr<T>();
  T* c = c_t.data_ptr<T>();
  T* hm = G > 0 ? hm_t.data_ptr<T>() : nullptr;
  T* cn_all = cn_t.data_ptr<T>();
  T* tc_all = tc_t.data_ptr<T>();
  T* out_all = lowp ? nullptr : r.out.template data_ptr<T>();
  T* ybuf = lowp ? y_t.data_ptr<T>() : nullptr;
  T* hprev_all = cfg.save ? r.hprev.template data_ptr<T>() : nullptr;
  T* cprev_all = cfg.save ? r.cprev.template data_ptr<T>() : nullptr;
  for (int64_t i = 0; i < nb; ++i) mask_row<T>(r, B, nb, i, b0 + i, h + i * H, hm);
  // The bias joins a step's input projection just before that step's recurrent GEMM, so z rounds as
  // (x W_ih^T + b) + h W_hh^T, the torch path's order.
  const T* bias = r.bias;
  auto add_bias = [&](T* z) {
    for (int64_t j = 0; j < 4 * H; ++j) z[j] = z[j] + bias[j];
  };
  if (bias != nullptr) {
    const int64_t t0 = r.reverse ? Tn - 1 : 0;
    for (int64_t i = 0; i < nb; ++i) add_bias(xp + (t0 * B + b0 + i) * S + off);
  }
  for (int64_t s = 0; s < Tn; ++s) {
    const int64_t t = r.reverse ? Tn - 1 - s : s;
    T* zt = xp + (t * B + b0) * S + off;
    const T* znext = s + 1 < Tn ? xp + ((r.reverse ? t - 1 : t + 1) * B + b0) * S + off : nullptr;
    if (fused) {
      if (G == 4) {
        for (int q = 0; q < 4; ++q) {
          step_gemm<T>(r.bf16_gemm, packed, q, nb, hm + q * nb * H, H, true, zt + q * H, S,
                       znext == nullptr ? nullptr : znext + q * H);
        }
      } else {
        step_gemm<T>(r.bf16_gemm, packed, 0, nb, G == 1 ? hm : h, H, true, zt, S, znext);
      }
    } else if (G == 0) {
      at::mm_out(rec_t, h_t, w_t);
    } else if (G == 1) {
      at::mm_out(rec_t, hm_t, w_t);
    } else {
      at::bmm_out(rec_t, hm_t, w_t4);
    }
    const T* rec = fused ? nullptr : rec_t.data_ptr<T>();
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t b = b0 + i;
      T* z = zt + i * S;
      if (!fused) {
        if (G == 4) {
          for (int64_t k = 0; k < 4; ++k) {
            const T* rk = rec + (k * nb + i) * H;
            T* zk = z + k * H;
            for (int64_t j = 0; j < H; ++j) zk[j] = zk[j] + rk[j];
          }
        } else {
          const T* rb = rec + i * 4 * H;
          for (int64_t j = 0; j < 4 * H; ++j) z[j] = z[j] + rb[j];
        }
      }
      T* hb = h + i * H;
      T* cb = c + i * H;
      if (hprev_all != nullptr) {
        std::memcpy(hprev_all + (t * B + b) * H, hb, sizeof(T) * H);
        std::memcpy(cprev_all + (t * B + b) * H, cb, sizeof(T) * H);
      }
      T* cn = cn_all + i * H;
      T* tc = tc_all + i * H;
      cell_forward_units<T>(cfg, lowp, H, z, cb, cn, tc, 0, H);
      const T* go = z + 3 * H;
      if (s + 1 < Tn) {  // the next step's pre-activations are cold (written by the input GEMM long ago)
        T* znext = xp + ((r.reverse ? t - 1 : t + 1) * B + b) * S + off;
        if (bias != nullptr) {
          add_bias(znext);  // brings the row into cache too
        } else {
          for (int64_t j = 0; j < 4 * H; j += 64 / static_cast<int64_t>(sizeof(T))) __builtin_prefetch(znext + j, 1, 3);
        }
      }
      T* y = lowp ? ybuf + i * H : out_all + (t * B + b) * H;
      const bool keep = vptr == nullptr || vptr[t * B + b] != 0;
      if (keep) {
        emit_state<T>(H, go, tc, cn, hb, cb, y);
        mask_row<T>(r, B, nb, i, b, hb, hm);
      } else if (!use_yprev || s == 0) {
        std::fill(y, y + H, T(0));  // (the carried output before any step: zeros)
      } else if (!lowp) {  // the carried output: the previous step's, already in out (no copy of every step's)
        std::memcpy(y, out_all + ((r.reverse ? t + 1 : t - 1) * B + b) * H, sizeof(T) * H);
      }  // (bf16: ybuf's row still holds the previous step's float32 y)
      if constexpr (std::is_same<T, float>::value) {
        if (lowp) store_row_bf16(y, H, out16 + (t * B + b) * H);
      }
    }
  }
  r.r_h.narrow(0, b0, nb).copy_(h_t);
  r.r_c.narrow(0, b0, nb).copy_(c_t);
}

// ---- the column split (one direction on a small batch: inference, and the forward of training) --------
// forward_rows gives each thread a block of batch rows, so with a batch smaller than the threads a thread idles,
// and with a few rows per thread every thread reads all of W_hh every step. Here the team of `nt` threads
// instead splits the hidden units: thread k owns units [j0, j1) of all four gates for every row, computes its
// columns of each step's recurrent GEMM from the whole previous h (shared, double-buffered), its part of the
// cell, and waits at one barrier per step. Each element is computed by the same micro-kernel over the same packed
// panels and the same pointwise code as in forward_rows, so the results are the same bits.

// Whether forward_cols / backward_cols take a direction (inference, and both passes of training): not a bf16
// layer, the packed kernel GEMM, one direction on 2+ threads, a batch of at most kColSplitMaxRows rows with W_hh of
// kColSplitMinBytes or more (or kColSplitMidMaxRows rows with kColSplitMidBytes, or kColSplitLargeMaxRows with
// kColSplitLargeBytes: below), and hidden units in whole column panels, at least one per thread (thread k owns panels [k P / nt, (k + 1) P / nt) of each
// gate's P = H / panel width). Measured
// (2 threads, hard_sigmoid forward, ratio to torch.nn.LSTM, row split -> column split): (50, 1, 64, 256) 1.12 ->
// 0.60, (50, 4, 64, 256) 1.15 -> 0.85, (50, 2, 64, 384) 1.28 -> 0.76, (50, 1, 128, 512) 1.36 -> 0.81,
// (200, 4, 256, 512) 1.26 -> 0.95; at 8 rows the standard layer was 1.16 against the row split's 0.83-0.99.
// Also up to kColSplitLargeMaxRows rows where W_hh takes kColSplitLargeBytes or more: there the row split has
// every thread stream all of W_hh (16 MiB and up: past L2, and half of L3) every step, the column split half of
// it. Measured (stop 21, 2 threads, column / row split, 7 rounds; standard layer, on the kernel): forward
// (50, 8, 64, 1024) 0.78, (50, 12, 64, 1024) 0.88, (50, 24, 64, 1024) 0.91, (50, 32, 64, 1024) 0.91, (50, 16, 64,
// 1536) 0.73, hard_sigmoid (50, 16, 128, 1024) 0.90; training (100, 16, 64, 1024) 0.92 (1.03 -> 0.96 against
// torch.nn.LSTM), (50, 8, 64, 1024) 0.87, (50, 16, 256, 1024) 0.97, (50, 24, 64, 1024) 0.96, (50, 32, 64, 1024)
// 0.98, (50, 8, 64, 1536) 0.72 (1.18 -> 0.85); below, (100, 12, 64, 768) (9 MiB) trained at 1.01 and hard_sigmoid
// forward on 8-16 rows with 4 MiB at 1.07-1.34.
// Between, 5-6 rows from kColSplitMidBytes: the hard_sigmoid forward, column / row split (stop 23, 2 threads, 15
// interleaved rounds): (50, 5, 64, 448) 0.97, (50, 5, 64, 512) 0.87, (50, 6, 64, 512) 0.93-0.97, (100, 6, 128,
// 512) 0.97, (50, 6, 64, 640) 0.87, (50, 5, 64, 768) 0.75; training (50, 5, 64, 512) 0.91, (50, 6, 64, 512) 0.97,
// (100, 6, 128, 512) 1.01; below 3 MiB it lost ((50, 6, 64, 384) 1.09, (50, 5/6/7, 64, 256) 1.06-1.31), and with
// 7-8 rows it gained little or lost ((50, 7, 64, 512) 1.05, (50, 7, 64, 640) 0.98, (50, 8, 64, 768) 0.95).
// native/checks.py's column_split mirrors this (a test holds them together).
constexpr int64_t kColSplitMaxRows = 4;
constexpr int64_t kColSplitMinBytes = int64_t(1) << 20;
constexpr int64_t kColSplitMidMaxRows = 6;
constexpr int64_t kColSplitMidBytes = int64_t(3) << 20;
constexpr int64_t kColSplitLargeMaxRows = 32;
constexpr int64_t kColSplitLargeBytes = int64_t(16) << 20;

#ifdef _OPENMP
// C(M, panels [p0, p1) of piece q) += A(M, k) B: kernel_gemm restricted to a range of column panels.
template <typename T>
void panel_range_gemm(const RecGemm<T>& g, int q, int64_t p0, int64_t p1, int64_t M, const T* A, int64_t lda, T* C,
                      int64_t ldc, bool accumulate = true) {
  constexpr int64_t NR = panel_width<T>();
  const T* piece = g.parts[q];
  for (int64_t p = p0; p < p1; ++p) {
    const T* Bp = piece + p * g.k * NR;
    const int64_t ncols = std::min<int64_t>(NR, g.n - p * NR);
    T* Cp = C + p * NR;
    int64_t m = 0;
    for (; m + kMR <= M; m += kMR) {
      micro_kernel<T, kMR>(g.k, A + m * lda, lda, Bp, Cp + m * ldc, ldc, ncols, accumulate);
    }
    if (m < M) micro_tail<T, kMR - 1>(M - m, g.k, A + m * lda, lda, Bp, Cp + m * ldc, ldc, ncols, accumulate);
  }
}

// Runs body(k, j0, j1) on a team of nt threads, thread k owning the hidden units [j0, j1): whole panels
// [k P / nt, (k + 1) P / nt) of each gate's P = `panels` panels of width nr. body may hold `omp barrier`s (they bind
// to this team). Returns false, having run nothing, when the runtime gave fewer threads than asked (every thread
// sees the same count, so none waits at a barrier the others skip): the caller then runs the row split itself.
template <typename F>
bool column_team(int nt, int64_t panels, int64_t nr, F&& body) {
  bool short_team = false;
#pragma omp parallel num_threads(nt)
  {
    const int k = omp_get_thread_num();
    if (omp_get_num_threads() != nt) {
      if (k == 0) short_team = true;
    } else {
      at::NoGradGuard no_grad;
      body(k, k * panels / nt * nr, (k + 1) * panels / nt * nr);
    }
  }
  return !short_team;
}

template <typename T>
bool column_split(const LayerConfig& cfg, const std::vector<DirData<T>>& dirs, int64_t B, int threads) {
  if (cfg.bf16 || cfg.gemm != kGemmKernel || dirs.size() != 1 || threads < 2 || B > kColSplitLargeMaxRows) {
    return false;
  }
  for (int64_t id : {cfg.gate_act, cfg.cand_act, cfg.cell_act}) {
    if (id < 0 || id >= kNumActs) return false;  // (forward_rows raises it: nothing may throw in an omp region)
  }
  const DirData<T>& r = dirs[0];
  const int64_t H = r.H, w_bytes = 4 * H * H * static_cast<int64_t>(sizeof(T));
  const int64_t need = B <= kColSplitMaxRows ? kColSplitMinBytes
                       : B <= kColSplitMidMaxRows ? kColSplitMidBytes
                                                  : kColSplitLargeBytes;
  const bool fits = w_bytes >= need;
  return r.shared_gemm.active() && fits && H % panel_width<T>() == 0 && H / panel_width<T>() >= threads;
}

template <typename T>
void forward_cols(const LayerConfig& cfg, T* xp, int64_t Tn, int64_t B, int64_t S, const uint8_t* vptr,
                  DirData<T>& r, int nt) {
  const int64_t H = r.H, G = r.G, off = r.off;
  const auto opts = r.r_h.options();
  const bool use_yprev = vptr != nullptr && cfg.carry;
  at::Tensor hbuf = at::empty({2, B, H}, opts);
  hbuf[0].copy_(r.s_h);
  at::Tensor c_t = r.s_c.clone(at::MemoryFormat::Contiguous);
  T* hs[2] = {hbuf.data_ptr<T>(), hbuf.data_ptr<T>() + B * H};
  T* c = c_t.data_ptr<T>();
  T* out_all = r.out.template data_ptr<T>();
  T* hprev_all = cfg.save ? r.hprev.template data_ptr<T>() : nullptr;  // (training: the states entering each step)
  T* cprev_all = cfg.save ? r.cprev.template data_ptr<T>() : nullptr;
  const RecGemm<T>& packed = r.shared_gemm;
  const T* bias = r.bias;
  constexpr int64_t NR = panel_width<T>();
  const int64_t panels = H / NR;  // per gate: whole panels (column_split), at least one per thread
  int done = 0;                  // which buffer holds h after the loop
  const bool ran = column_team(nt, panels, NR, [&](int k, int64_t j0, int64_t j1) {
    const int64_t n = j1 - j0;
    std::vector<T> hm(G > 0 ? static_cast<size_t>(G * B * H) : 0), cn(n * B), tc(n * B);
    int cur = 0;
    for (int64_t s = 0; s < Tn; ++s) {
      const int64_t t = r.reverse ? Tn - 1 - s : s;
      T* zt = xp + t * B * S + off;
      const T* h = hs[cur];
      T* hn = hs[1 - cur];
      if (bias != nullptr) {
        for (int64_t i = 0; i < B; ++i) {
          for (int64_t q = 0; q < 4; ++q) {
            T* z = zt + i * S + q * H + j0;
            const T* bq = bias + q * H + j0;
            for (int64_t j = 0; j < n; ++j) z[j] = z[j] + bq[j];
          }
        }
      }
      if (G > 0) {  // the masked copies of the whole h (every thread its own: B is small)
        for (int64_t i = 0; i < B; ++i) mask_row<T>(r, B, B, i, i, h + i * H, hm.data());
      }
      const int64_t p0 = j0 / NR, p1 = (j0 + n) / NR;
      if (G == 4) {
        for (int q = 0; q < 4; ++q) panel_range_gemm<T>(packed, q, p0, p1, B, hm.data() + q * B * H, H, zt + q * H, S);
      } else {
        const T* A = G == 1 ? hm.data() : h;
        for (int64_t q = 0; q < 4; ++q) panel_range_gemm<T>(packed, 0, p0 + q * (H / NR), p1 + q * (H / NR), B, A, H, zt, S);
      }
      for (int64_t i = 0; i < B; ++i) {
        T* z = zt + i * S;
        if (hprev_all != nullptr) {
          std::memcpy(hprev_all + (t * B + i) * H + j0, h + i * H + j0, sizeof(T) * n);
          std::memcpy(cprev_all + (t * B + i) * H + j0, c + i * H + j0, sizeof(T) * n);
        }
        T* cb = c + i * H + j0;
        T* cni = cn.data() + i * n;
        T* tci = tc.data() + i * n;
        cell_forward_units<T>(cfg, false, H, z, cb, cni, tci, j0, n);
        const T* go = z + 3 * H + j0;
        T* y = out_all + (t * B + i) * H + j0;
        const bool keep = vptr == nullptr || vptr[t * B + i] != 0;
        if (keep) {
          emit_state<T>(n, go, tci, cni, hn + i * H + j0, cb, y);
        } else {
          std::memcpy(hn + i * H + j0, h + i * H + j0, sizeof(T) * n);
          if (use_yprev && s > 0) {  // the carried output: the previous step's, already in out
            std::memcpy(y, out_all + ((r.reverse ? t + 1 : t - 1) * B + i) * H + j0, sizeof(T) * n);
          } else {
            std::fill(y, y + n, T(0));
          }
        }
      }
      cur = 1 - cur;
#pragma omp barrier
    }
    if (k == 0) done = cur;
  });
  if (!ran) {  // (nothing was written: the row split, on the calling thread)
    forward_rows<T>(cfg, xp, Tn, B, S, vptr, r, 0, B);
    return;
  }
  r.r_h.copy_(hbuf[done]);
  r.r_c.copy_(c_t);
}
#endif

// dh of the state leaving the step just processed, row i (global row b), hidden units [j0, j1) (all by default):
// (dZ W_hh) * m + passthrough.
template <typename T>
inline void combine_dh(const DirData<T>& r, int64_t B, int64_t nb, int64_t i, int64_t b, const T* dhg,
                       const T* dpass, T* dst, int64_t j0 = 0, int64_t j1 = -1) {
  const int64_t H = r.H;
  if (j1 < 0) j1 = H;
  const T* pb = dpass + i * H;
  if (r.G == 4) {
    for (int64_t j = j0; j < j1; ++j) dst[j] = pb[j];
    for (int64_t k = 0; k < 4; ++k) {
      const T* gk = dhg + (k * nb + i) * H;
      const T* mk = r.mask + (k * B + b) * H;
      for (int64_t j = j0; j < j1; ++j) dst[j] = dst[j] + gk[j] * mk[j];
    }
  } else if (r.G == 1) {
    const T* gb = dhg + i * H;
    const T* mb = r.mask + b * H;
    for (int64_t j = j0; j < j1; ++j) dst[j] = gb[j] * mb[j] + pb[j];
  } else {
    const T* gb = dhg + i * H;
    for (int64_t j = j0; j < j1; ++j) dst[j] = gb[j] + pb[j];
  }
}

// One row's backward through the cell for hidden units [j0, j1) (row pointers: dh, dc, dpass, dyc, tmp, tc are
// (H); dz the row's 4H gate gradients; gz its activated gates; cp c_prev; gy the output gradient). A masked step
// (keep false) passes the state through and leaves dz zero; otherwise dz of the four gates, the carried dc and
// dpass cleared. backward_rows (all units) and backward_cols (a thread's units) share it.
template <typename T>
inline void cell_backward_units(const LayerConfig& cfg, bool lowp, int64_t H, bool keep, const T* gz, const T* cp,
                                const T* gy, const T* dh, T* dc, T* dpass, T* dyc, T* tmp, T* tc, T* dz, int64_t j0,
                                int64_t j1) {
  const int64_t n = j1 - j0;
  if (!keep) {  // state passes through; the output gradient goes to the carried output (if any)
    for (int64_t q = 0; q < 4; ++q) std::fill(dz + q * H + j0, dz + q * H + j1, T(0));
    std::memcpy(dpass + j0, dh + j0, sizeof(T) * n);
    if (dyc != nullptr) {
      for (int64_t j = j0; j < j1; ++j) dyc[j] = dyc[j] + gy[j];
    }
    return;
  }
  const T* gi = gz;
  const T* gf = gz + H;
  const T* gg = gz + 2 * H;
  const T* go = gz + 3 * H;
  for (int64_t j = j0; j < j1; ++j) tmp[j] = gf[j] * cp[j] + gi[j] * gg[j];  // c_t, recomputed
  step_act<T>(lowp, cfg.cell_act, tmp + j0, tc + j0, n);
  for (int64_t j = j0; j < j1; ++j) {
    T dhn = gy[j] + dh[j];
    if (dyc != nullptr) dhn = dhn + dyc[j];
    dz[3 * H + j] = dhn * tc[j];
    tmp[j] = dhn * go[j];
  }
  mul_act_grad<T>(cfg.cell_act, tmp + j0, tc + j0, n);
  backprop_cell<T>(H, j0, j1, tmp, gi, gf, gg, cp, dz, dc, dpass);
  if (dyc != nullptr) std::fill(dyc + j0, dyc + j1, T(0));
  mul_act_grad<T>(cfg.gate_act, dz + j0, gz + j0, n);
  mul_act_grad<T>(cfg.gate_act, dz + H + j0, gz + H + j0, n);
  mul_act_grad<T>(cfg.cand_act, dz + 2 * H + j0, gg + j0, n);
  mul_act_grad<T>(cfg.gate_act, dz + 3 * H + j0, go + j0, n);
}

template <typename T>
void backward_rows(const LayerConfig& cfg, const T* gates, at::Tensor& dZ, int64_t Tn, int64_t B, int64_t S,
                   const uint8_t* vptr, DirData<T>& r, int64_t b0, int64_t b1, T* db_rows) {
  const int64_t nb = b1 - b0, H = r.H, G = r.G, off = r.off;
  if (nb <= 0) return;
  const auto opts = r.r_h.options();
  // Each row's dz (its 4H gate gradients at a step) is also added into the row's bias-gradient sums, db_rows
  // (B, S), while it is in L1 (a reduction over all of dZ after the loop cost 1-2 % of a training step).
  // A bf16 layer (dZ bfloat16): each row's dz is formed in float32 in dzs (this block's rows), then rounded
  // into dZ and summed into db_rows (store_dz_bf16); the step GEMM reads dZ's bf16 rows.
  const bool lowp = dZ.scalar_type() == at::kBFloat16;
  at::Tensor dzs_t = lowp ? at::empty({nb, 4 * H}, opts) : at::Tensor();
  T* dzs = lowp ? dzs_t.data_ptr<T>() : nullptr;
  uint32_t* dz_pairs = lowp ? reinterpret_cast<uint32_t*>(dZ.data_ptr<at::BFloat16>()) : nullptr;
  const bool use_dyc = vptr != nullptr && cfg.carry;
  at::Tensor dh_t = r.s_h.narrow(0, b0, nb).clone(at::MemoryFormat::Contiguous);
  at::Tensor dc_t = r.s_c.narrow(0, b0, nb).clone(at::MemoryFormat::Contiguous);
  at::Tensor dpass_t = at::zeros({nb, H}, opts);
  at::Tensor dyc_t = use_dyc ? at::zeros({nb, H}, opts) : at::Tensor();
  at::Tensor tmp_t = at::empty({nb, H}, opts), tc_t = at::empty({nb, H}, opts);
  at::Tensor dhg_t = G == 4 ? at::zeros({4, nb, H}, opts) : at::zeros({nb, H}, opts);
  const RecGemm<T> own = item_gemm<T>(cfg, r, nb, /*forward=*/false);
  const RecGemm<T>& packed = own.active() ? own : r.shared_gemm;
  const bool fused = packed.active() || r.bf16_gemm.active();
  const at::Tensor w4 = fused ? at::Tensor() : r.w.view({4, H, H});
  T* dh_all = dh_t.data_ptr<T>();
  T* dc_all = dc_t.data_ptr<T>();
  T* dpass_all = dpass_t.data_ptr<T>();
  T* dyc_all = use_dyc ? dyc_t.data_ptr<T>() : nullptr;
  T* tmp_all = tmp_t.data_ptr<T>();
  T* tc_all = tc_t.data_ptr<T>();
  T* dhg = dhg_t.data_ptr<T>();
  T* dz_ptr = lowp ? nullptr : dZ.data_ptr<T>();
  for (int64_t s = Tn - 1; s >= 0; --s) {
    const int64_t t = r.reverse ? Tn - 1 - s : s;
    const bool first = s == Tn - 1;
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t b = b0 + i;
      T* dh = dh_all + i * H;
      if (!first) combine_dh<T>(r, B, nb, i, b, dhg, dpass_all, dh);
      T* dc = dc_all + i * H;
      T* dpass = dpass_all + i * H;
      T* dyc = dyc_all != nullptr ? dyc_all + i * H : nullptr;
      const T* gy = r.gout + (t * B + b) * H;
      T* dz = lowp ? dzs + i * 4 * H : dz_ptr + (t * B + b) * S + off;
      if (lowp && s > 0) {  // the row's next step reads cold memory (the forward's gates, c_prev): ask for it now
        const int64_t tn = r.reverse ? t + 1 : t - 1;
        prefetch_l2(gates + (tn * B + b) * S + off, 4 * H);
        prefetch_l2(r.cprev_in + (tn * B + b) * H, H);
        prefetch_l2(r.gout + (tn * B + b) * H, H);
      }
      const bool keep = vptr == nullptr || vptr[t * B + b] != 0;
      cell_backward_units<T>(cfg, lowp, H, keep, gates + (t * B + b) * S + off, r.cprev_in + (t * B + b) * H, gy, dh,
                             dc, dpass, dyc, tmp_all + i * H, tc_all + i * H, dz, 0, H);
      if (!keep) {
        if (lowp) std::fill(dz_pairs + ((t * B + b) * S + off) / 2, dz_pairs + ((t * B + b) * S + off + 4 * H) / 2, 0u);
        continue;
      }
      if constexpr (std::is_same<T, float>::value) {
        if (lowp) {
          store_dz_bf16(dz, 4 * H, dz_pairs + ((t * B + b) * S + off) / 2, db_rows + b * S + off);
          continue;
        }
      }
      T* db = db_rows + b * S + off;
      for (int64_t j = 0; j < 4 * H; ++j) db[j] = db[j] + dz[j];
    }
    // dh entering step t, before mask and passthrough: dZ_t W_hh for this block of rows.
    if (lowp) {
      if constexpr (std::is_same<T, float>::value) {
        bf16_backward_step(r.bf16_gemm, G, nb, H, dz_pairs + ((t * B + b0) * S + off) / 2, S, dzs, dhg);
      }
      continue;
    }
    const T* dzt = dz_ptr + (t * B + b0) * S + off;
    if (fused) {
      if (G == 4) {
        for (int q = 0; q < 4; ++q) step_gemm<T>(r.bf16_gemm, packed, q, nb, dzt + q * H, S, false, dhg + q * nb * H, H);
      } else {
        step_gemm<T>(r.bf16_gemm, packed, 0, nb, dzt, S, false, dhg, H);
      }
    } else {
      at::Tensor dz_rows = dZ.select(0, t).narrow(0, b0, nb).narrow(1, off, 4 * H);  // row stride S
      if (G == 4) {
        at::bmm_out(dhg_t, dz_rows.view({nb, 4, H}).transpose(0, 1), w4);
      } else {
        at::mm_out(dhg_t, dz_rows, r.w);
      }
    }
  }
  for (int64_t i = 0; i < nb; ++i) combine_dh<T>(r, B, nb, i, b0 + i, dhg, dpass_all, dh_all + i * H);
  r.r_h.narrow(0, b0, nb).copy_(dh_t);
  r.r_c.narrow(0, b0, nb).copy_(dc_t);
}

#ifdef _OPENMP
// backward_rows with the column split (see forward_cols): thread k owns the hidden units [j0, j1) of every row.
// Per step it forms dZ of its units (all four gates) from its columns of dh, then - after the step's one barrier,
// when every unit's dZ_t is written - its columns of dh entering the step, dZ_t W_hh, read back only by itself.
// The same pointwise code and micro-kernel per element as backward_rows: the same bits. Not for a bf16 layer.
template <typename T>
void backward_cols(const LayerConfig& cfg, const T* gates, at::Tensor& dZ, int64_t Tn, int64_t B, int64_t S,
                   const uint8_t* vptr, DirData<T>& r, int nt, T* db_rows) {
  const int64_t H = r.H, G = r.G, off = r.off;
  const auto opts = r.r_h.options();
  const bool use_dyc = vptr != nullptr && cfg.carry;
  at::Tensor dh_t = r.s_h.clone(at::MemoryFormat::Contiguous);
  at::Tensor dc_t = r.s_c.clone(at::MemoryFormat::Contiguous);
  at::Tensor dpass_t = at::zeros({B, H}, opts);
  at::Tensor dyc_t = use_dyc ? at::zeros({B, H}, opts) : at::Tensor();
  at::Tensor tmp_t = at::empty({B, H}, opts), tc_t = at::empty({B, H}, opts);
  at::Tensor dhg_t = G == 4 ? at::zeros({4, B, H}, opts) : at::zeros({B, H}, opts);
  T* dh_all = dh_t.data_ptr<T>();
  T* dc_all = dc_t.data_ptr<T>();
  T* dpass_all = dpass_t.data_ptr<T>();
  T* dyc_all = use_dyc ? dyc_t.data_ptr<T>() : nullptr;
  T* tmp_all = tmp_t.data_ptr<T>();
  T* tc_all = tc_t.data_ptr<T>();
  T* dhg = dhg_t.data_ptr<T>();
  T* dz_ptr = dZ.data_ptr<T>();
  const RecGemm<T>& packed = r.shared_gemm;
  constexpr int64_t NR = panel_width<T>();
  const int64_t panels = H / NR;
  const bool ran = column_team(nt, panels, NR, [&](int, int64_t j0, int64_t j1) {
    const int64_t p0 = j0 / NR, p1 = j1 / NR;
    for (int64_t s = Tn - 1; s >= 0; --s) {
      const int64_t t = r.reverse ? Tn - 1 - s : s;
      for (int64_t i = 0; i < B; ++i) {
        T* dh = dh_all + i * H;
        if (s != Tn - 1) combine_dh<T>(r, B, B, i, i, dhg, dpass_all, dh, j0, j1);
        T* dyc = dyc_all != nullptr ? dyc_all + i * H : nullptr;
        const bool keep = vptr == nullptr || vptr[t * B + i] != 0;
        T* dz = dz_ptr + (t * B + i) * S + off;
        cell_backward_units<T>(cfg, false, H, keep, gates + (t * B + i) * S + off, r.cprev_in + (t * B + i) * H,
                               r.gout + (t * B + i) * H, dh, dc_all + i * H, dpass_all + i * H, dyc, tmp_all + i * H,
                               tc_all + i * H, dz, j0, j1);
        if (keep) {  // this thread's units of the row's bias-gradient sums (as backward_rows adds them)
          T* db = db_rows + i * S + off;
          for (int64_t q = 0; q < 4; ++q) {
            for (int64_t j = q * H + j0; j < q * H + j1; ++j) db[j] = db[j] + dz[j];
          }
        }
      }
#pragma omp barrier
      const T* dzt = dz_ptr + t * B * S + off;
      if (G == 4) {
        for (int q = 0; q < 4; ++q) {
          panel_range_gemm<T>(packed, q, p0, p1, B, dzt + q * H, S, dhg + q * B * H, H, /*accumulate=*/false);
        }
      } else {
        panel_range_gemm<T>(packed, 0, p0, p1, B, dzt, S, dhg, H, /*accumulate=*/false);
      }
    }
    for (int64_t i = 0; i < B; ++i) combine_dh<T>(r, B, B, i, i, dhg, dpass_all, dh_all + i * H, j0, j1);
  });
  if (!ran) {  // (nothing was written: the row split, on the calling thread)
    backward_rows<T>(cfg, gates, dZ, Tn, B, S, vptr, r, 0, B, db_rows);
    return;
  }
  r.r_h.copy_(dh_t);
  r.r_c.copy_(dc_t);
}
#endif

template <typename T>
std::vector<DirData<T>> direction_data(const LayerConfig& cfg, const std::vector<at::Tensor>& w_hh,
                                       const std::vector<at::Tensor>& rec_mask, const at::TensorOptions& opts,
                                       int64_t B, const std::vector<at::Tensor>& s_h,
                                       const std::vector<at::Tensor>& s_c, const char* what, bool forward) {
  std::vector<DirData<T>> dirs(w_hh.size());
  for (size_t d = 0; d < dirs.size(); ++d) {
    DirData<T>& r = dirs[d];
    r.H = w_hh[d].size(1);
    r.off = cfg.offsets[d];
    r.reverse = cfg.reverse[d];
    r.w = cfg.gemm == kGemmKernel ? w_hh[d] : w_hh[d].contiguous();
    r.G = rec_mask[d].numel() > 0 ? rec_mask[d].size(0) : 0;
    r.mask = r.G > 0 ? rec_mask[d].data_ptr<T>() : nullptr;
    TORCH_CHECK(s_h[d].sizes() == at::IntArrayRef({B, r.H}) && s_c[d].sizes() == at::IntArrayRef({B, r.H}),
                "lstm-bridge native: ", what, "[", d, "] must be (", B, ", ", r.H, "); received ",
                s_h[d].sizes(), " and ", s_c[d].sizes());
    r.s_h = s_h[d].to(opts);
    r.s_c = s_c[d].to(opts);
    r.r_h = at::empty({B, r.H}, opts);
    r.r_c = at::empty({B, r.H}, opts);
    if (cfg.bf16) {
      TORCH_CHECK((std::is_same<T, float>::value), "lstm-bridge native: bf16 GEMM operands need a float32 layer");
      r.bf16_gemm = pack_bf16_weights(r.w, r.G, forward);
    } else if (cfg.gemm == kGemmKernel) {
      r.shared_gemm = pack_kernel_weights<T>(r.w, r.G, forward);
    }
  }
  return dirs;
}

}  // namespace

std::vector<std::vector<at::Tensor>> lstm_forward(const LayerConfig& cfg, at::Tensor xp,
                                                  const std::vector<at::Tensor>& w_hh,
                                                  const std::vector<at::Tensor>& h0,
                                                  const std::vector<at::Tensor>& c0,
                                                  const at::Tensor& valid,
                                                  const std::vector<at::Tensor>& rec_mask,
                                                  const std::vector<at::Tensor>& bias) {
  check_inputs(cfg, xp, w_hh, valid, rec_mask);
  TORCH_CHECK(h0.size() == w_hh.size() && c0.size() == w_hh.size() && bias.size() == w_hh.size(),
              "lstm-bridge native: h0/c0/bias need one tensor per direction (", w_hh.size(), "); received ",
              h0.size(), ", ", c0.size(), " and ", bias.size());
  std::vector<at::Tensor> bias_c(bias.size());
  for (size_t d = 0; d < bias.size(); ++d) {
    if (bias[d].numel() == 0) continue;
    const int64_t H = w_hh[d].size(1);
    TORCH_CHECK(bias[d].dim() == 1 && bias[d].size(0) == 4 * H && bias[d].scalar_type() == xp.scalar_type(),
                "lstm-bridge native: bias[", d, "] must be (", 4 * H, ") of dtype ", xp.scalar_type(),
                " or empty; received ", bias[d].sizes(), " ", bias[d].scalar_type());
    bias_c[d] = bias[d].contiguous();
  }
  const int64_t Tn = xp.size(0), B = xp.size(1), S = xp.size(2);
  const uint8_t* vptr = valid.numel() > 0 ? valid.data_ptr<uint8_t>() : nullptr;
  std::vector<std::vector<at::Tensor>> result(5);
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "lstm_bridge_forward", [&] {
    auto dirs = direction_data<scalar_t>(cfg, w_hh, rec_mask, xp.options(), B, h0, c0, "h0/c0", true);
    for (size_t d = 0; d < dirs.size(); ++d) {
      if (bias_c[d].defined()) dirs[d].bias = bias_c[d].data_ptr<scalar_t>();
    }
    for (auto& r : dirs) {
      r.out = pooled_empty({Tn, B, r.H}, cfg.bf16 ? xp.options().dtype(at::kBFloat16) : xp.options());
      if (cfg.save) {
        r.hprev = pooled_empty({Tn, B, r.H}, xp.options());
        r.cprev = pooled_empty({Tn, B, r.H}, xp.options());
      }
    }
    scalar_t* xp_ptr = xp.data_ptr<scalar_t>();
    const int64_t work = recurrent_work(dirs, Tn, B);
#ifdef _OPENMP
    const int threads = static_cast<int>(at::get_num_threads());
    if (work >= kParallelWork && !at::in_parallel_region() && column_split<scalar_t>(cfg, dirs, B, threads)) {
      forward_cols<scalar_t>(cfg, xp_ptr, Tn, B, S, vptr, dirs[0], threads);
    } else
#endif
    {
      for_each_item(static_cast<int64_t>(dirs.size()), B, work, [&](int64_t d, int64_t b0, int64_t b1) {
        forward_rows<scalar_t>(cfg, xp_ptr, Tn, B, S, vptr, dirs[d], b0, b1);
      });
    }
    for (auto& r : dirs) {
      result[0].push_back(r.out);
      result[1].push_back(r.r_h);
      result[2].push_back(r.r_c);
      if (cfg.save) {
        result[3].push_back(r.cprev);
        result[4].push_back(r.hprev);
      }
    }
  });
  return result;
}

std::vector<std::vector<at::Tensor>> lstm_backward(const LayerConfig& cfg, const at::Tensor& gates,
                                                   const std::vector<at::Tensor>& grad_out,
                                                   const std::vector<at::Tensor>& grad_hn,
                                                   const std::vector<at::Tensor>& grad_cn,
                                                   const std::vector<at::Tensor>& c_prev,
                                                   const std::vector<at::Tensor>& w_hh,
                                                   const at::Tensor& valid,
                                                   const std::vector<at::Tensor>& rec_mask) {
  check_inputs(cfg, gates, w_hh, valid, rec_mask);
  const size_t D = w_hh.size();
  TORCH_CHECK(grad_out.size() == D && grad_hn.size() == D && grad_cn.size() == D && c_prev.size() == D,
              "lstm-bridge native: backward needs one grad_out/grad_hn/grad_cn/c_prev per direction (", D, ")");
  const int64_t Tn = gates.size(0), B = gates.size(1), S = gates.size(2);
  const uint8_t* vptr = valid.numel() > 0 ? valid.data_ptr<uint8_t>() : nullptr;
  // cfg.bf16: dZ in bfloat16 (what the three GEMMs after the loop read) and the bias gradient's row sums
  const bool lowp = cfg.bf16;
  TORCH_CHECK(!lowp || gates.scalar_type() == at::kFloat, "lstm-bridge native: a bf16 layer's gates must be float32; "
              "received ", gates.scalar_type());
  at::Tensor dZ = pooled_empty(gates.sizes(), lowp ? gates.options().dtype(at::kBFloat16) : gates.options());
  // the bias gradients: each row's sums over its steps (backward_rows / backward_cols add every dz row in),
  // then the rows' sums added in row order (the same bits for any threading)
  at::Tensor db_rows = at::zeros({B, S}, gates.options());
  std::vector<at::Tensor> gout(D), cprev(D);
  std::vector<std::vector<at::Tensor>> result(3);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_bridge_backward", [&] {
    auto dirs = direction_data<scalar_t>(cfg, w_hh, rec_mask, gates.options(), B, grad_hn, grad_cn,
                                         "grad h_n/c_n", false);
    for (size_t d = 0; d < D; ++d) {
      const int64_t H = dirs[d].H;
      TORCH_CHECK(grad_out[d].sizes() == at::IntArrayRef({Tn, B, H}) &&
                      c_prev[d].sizes() == at::IntArrayRef({Tn, B, H}),
                  "lstm-bridge native: grad_out/c_prev[", d, "] must be (", Tn, ", ", B, ", ", H, "); received ",
                  grad_out[d].sizes(), " and ", c_prev[d].sizes());
      gout[d] = grad_out[d].to(gates.options()).contiguous();
      cprev[d] = c_prev[d].to(gates.options()).contiguous();
      dirs[d].gout = gout[d].data_ptr<scalar_t>();
      dirs[d].cprev_in = cprev[d].data_ptr<scalar_t>();
    }
    const scalar_t* gptr = gates.data_ptr<scalar_t>();
    scalar_t* db_ptr = db_rows.data_ptr<scalar_t>();
    const int64_t work = recurrent_work(dirs, Tn, B);
#ifdef _OPENMP
    const int threads = static_cast<int>(at::get_num_threads());
    if (!lowp && work >= kParallelWork && !at::in_parallel_region() && column_split<scalar_t>(cfg, dirs, B, threads)) {
      backward_cols<scalar_t>(cfg, gptr, dZ, Tn, B, S, vptr, dirs[0], threads, db_ptr);
    } else
#endif
    {
      for_each_item(static_cast<int64_t>(D), B, work, [&](int64_t d, int64_t b0, int64_t b1) {
        backward_rows<scalar_t>(cfg, gptr, dZ, Tn, B, S, vptr, dirs[d], b0, b1, db_ptr);
      });
    }
    result[0].push_back(dZ);
    at::Tensor db = at::zeros({S}, gates.options());
    scalar_t* out = db.data_ptr<scalar_t>();
    for (int64_t b = 0; b < B; ++b) {
      const scalar_t* row = db_ptr + b * S;
      for (int64_t j = 0; j < S; ++j) out[j] = out[j] + row[j];
    }
    result[0].push_back(db);
    for (auto& r : dirs) {
      result[1].push_back(r.r_h);
      result[2].push_back(r.r_c);
    }
  });
  return result;
}

// Rows of dZ (and of src) per block of gate_weight_grad: the block's packed panels of src (kWgradRows
// x N) stay in L2, the kWgradRows rows of dz a micro-tile reads in L1.
constexpr int64_t kWgradRows = 256;

// Rows [k0, k0 + kn) of h * m (m: the (B, H) mask piece, or null for h alone; row r is batch row r % B) into
// the micro-kernel's column panels (kc x NR each, columns past H zero).
template <typename T>
void pack_masked_rows(const T* h, const T* mask, int64_t B, int64_t H, int64_t k0, int64_t kn, int64_t kc, T* pack) {
  constexpr int64_t NR = panel_width<T>();
  const int64_t panels = (H + NR - 1) / NR;
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t n0 = p * NR, cols = std::min<int64_t>(NR, H - n0);
    T* panel = pack + p * kc * NR;
    for (int64_t kk = 0; kk < kn; ++kk) {
      const int64_t r = k0 + kk;
      const T* __restrict src = h + r * H + n0;
      T* __restrict dst = panel + kk * NR;
      if (mask != nullptr) {
        const T* __restrict mr = mask + (r % B) * H + n0;
        for (int64_t c = 0; c < cols; ++c) dst[c] = src[c] * mr[c];
      } else {
        std::memcpy(dst, src, sizeof(T) * cols);
      }
      for (int64_t c = cols; c < NR; ++c) dst[c] = T(0);
    }
  }
}

// One gate's dW block, output rows [m0, m1): out(., N) (+)= dz_q^T (h * m_q) over all R rows, h (R, N). dz
// points at the gate's first column (row stride lds), mask at the gate's (B, N) piece or is null; pack holds
// kWgradRows x panels x NR elements, strip kWgradRows x kMR. Nothing of (R, N) size is written: h * m_q is
// formed while packing h's rows, and dz_q^T is read K-major (A[kk * lda + r]) - in place where one or two
// panels read it, else copied once per micro-tile into strip (dz's rows are S apart, a page each at
// S = 1024: read in place once per panel they walked the TLB; with one panel the copy is pure cost).
template <typename T>
void gate_grad_rows(const T* dz, int64_t lds, const T* h, const T* mask, int64_t B, int64_t R, int64_t N, T* out,
                    T* pack, T* strip, int64_t m0, int64_t m1) {
  constexpr int64_t NR = panel_width<T>();
  const int64_t panels = (N + NR - 1) / NR;
  const bool copy_strip = panels > 2;
  for (int64_t k0 = 0; k0 < R; k0 += kWgradRows) {
    const int64_t kn = std::min<int64_t>(kWgradRows, R - k0);
    pack_masked_rows<T>(h, mask, B, N, k0, kn, kWgradRows, pack);
    const T* a = dz + k0 * lds;
    const bool accumulate = k0 > 0;
    for (int64_t m = m0; m < m1; m += kMR) {
      const int64_t rows = std::min<int64_t>(kMR, m1 - m);
      const T* am = a + m;
      int64_t lda = lds;
      if (copy_strip) {
        for (int64_t kk = 0; kk < kn; ++kk) {
          for (int64_t i = 0; i < rows; ++i) strip[kk * kMR + i] = am[kk * lds + i];
        }
        am = strip;
        lda = kMR;
      }
      for (int64_t p = 0; p < panels; ++p) {
        const T* bp = pack + p * kWgradRows * NR;
        T* c = out + m * N + p * NR;
        const int64_t cols = std::min<int64_t>(NR, N - p * NR);
        if (rows == kMR) {
          micro_kernel<T, kMR, true>(kn, am, lda, bp, c, N, cols, accumulate);
        } else {
          micro_tail<T, kMR - 1, true>(rows, kn, am, lda, bp, c, N, cols, accumulate);
        }
      }
    }
  }
}

// A weight gradient per gate block: out (G * H, N), block q = dz_q^T (src * m_q) summed over all R = T*B
// rows, dz_q the columns [col0 + q H, col0 + (q + 1) H) of dz (R, S) (row r belongs to batch row r % B),
// src (R, N) (any shape of R*N contiguous elements: h_prev for dW_hh, x for dW_ih), mask (Gm, B, N)
// contiguous with Gm = G (one per gate: Keras's implementation 1 under dropout), 1 (shared), or an empty
// tensor for none. Per-gate masks would otherwise cost G GEMMs of M = H over K = R (oneDNN ran those at
// half the speed of one M = G H product) and G (R, N) products src * m_q. Items (gate, block of output
// rows) spread across threads.
at::Tensor gate_weight_grad(const at::Tensor& dz, int64_t col0, int64_t G, int64_t H, const at::Tensor& src,
                            const at::Tensor& mask) {
  TORCH_CHECK(dz.dim() == 2 && dz.is_contiguous() && (dz.scalar_type() == at::kFloat || dz.scalar_type() == at::kDouble),
              "lstm-bridge native: gate_weight_grad needs a contiguous float32/float64 dz (R, S); received ",
              dz.sizes(), " ", dz.scalar_type());
  TORCH_CHECK(src.dim() >= 1 && src.is_contiguous() && src.scalar_type() == dz.scalar_type(),
              "lstm-bridge native: gate_weight_grad needs a contiguous src of dz's dtype ", dz.scalar_type(),
              "; received ", src.sizes(), " ", src.scalar_type());
  const int64_t R = dz.size(0), S = dz.size(1), N = src.dim() > 0 ? src.size(-1) : 0;
  TORCH_CHECK(G > 0 && H > 0 && N > 0 && src.numel() == R * N && col0 >= 0 && col0 + G * H <= S,
              "lstm-bridge native: gate_weight_grad needs src with ", R, " rows and columns [col0, col0 + G H) "
              "inside dz's ", S, "; received src ", src.sizes(), ", col0 ", col0, ", G ", G, ", H ", H);
  const bool masked = mask.numel() > 0;
  const int64_t Gm = masked ? mask.size(0) : 0, B = masked ? mask.size(1) : 1;
  TORCH_CHECK(!masked || (mask.dim() == 3 && (Gm == 1 || Gm == G) && mask.size(2) == N && B > 0 && R % B == 0 &&
                          mask.is_contiguous() && mask.scalar_type() == dz.scalar_type()),
              "lstm-bridge native: gate_weight_grad mask must be a contiguous (1 or ", G, ", B, ", N, ") ",
              dz.scalar_type(), " tensor with B dividing ", R, " rows; received ", mask.sizes(), " ",
              mask.scalar_type());
  at::Tensor out = pooled_empty({G * H, N}, dz.options());
  if (R == 0) return out.zero_();
  AT_DISPATCH_FLOATING_TYPES(dz.scalar_type(), "lstm_bridge_gate_weight_grad", [&] {
    constexpr int64_t NR = panel_width<scalar_t>();
    const int64_t panels = (N + NR - 1) / NR;
    const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
    // each gate's output rows split so that there are at least as many items as threads (4 gates, 2
    // threads: one split), every block a multiple of the micro-kernel's rows
    const int64_t splits = std::max<int64_t>(1, std::min<int64_t>((threads + G - 1) / G, (H + kMR - 1) / kMR));
    const int64_t step = (H + splits - 1) / splits;
    const int64_t block = (step + kMR - 1) / kMR * kMR;
    const scalar_t* d = dz.data_ptr<scalar_t>();
    const scalar_t* x = src.data_ptr<scalar_t>();
    const scalar_t* m = masked ? mask.data_ptr<scalar_t>() : nullptr;
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, G * splits, 1, [&](int64_t i0, int64_t i1) {
      std::vector<scalar_t> pack(static_cast<size_t>(kWgradRows * panels * NR));
      std::vector<scalar_t> strip(static_cast<size_t>(kWgradRows * kMR));
      for (int64_t item = i0; item < i1; ++item) {
        const int64_t q = item / splits, part = item % splits;
        const int64_t m0 = std::min(H, part * block), m1 = std::min(H, m0 + block);
        if (m0 >= m1) continue;
        const scalar_t* piece = m == nullptr ? nullptr : m + (Gm == G ? q : 0) * B * N;
        gate_grad_rows<scalar_t>(d + col0 + q * H, S, x, piece, B, R, N, o + q * H * N, pack.data(), strip.data(),
                                 m0, m1);
      }
    });
  });
  return out;
}

// How matmul_nt and the gated products split their M rows of K elements (elem bytes each) against N
// output columns: blocks of ~192 KiB of rows (L2 also holds the packed panel in use), a multiple of kMR,
// at most 256 rows; grain: blocks per task so that a task has at least 2^16 multiply-adds.
struct RowBlocks {
  int64_t block, blocks, grain;
};

inline RowBlocks row_blocks(int64_t M, int64_t K, int64_t N, int64_t elem) {
  const int64_t fit = (int64_t(192) << 10) / std::max<int64_t>(1, K * elem);
  const int64_t block = std::max<int64_t>(kMR, std::min<int64_t>(256, fit) / kMR * kMR);
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, block * K * N));
  return RowBlocks{block, (M + block - 1) / block, grain};
}

template <typename T>
void check_gate_masks(const at::Tensor& mask, int64_t G, int64_t M, int64_t K, at::ScalarType dtype, const char* what) {
  TORCH_CHECK(mask.dim() == 3 && mask.size(0) == G && mask.size(1) > 0 && M % mask.size(1) == 0 &&
                  mask.size(2) == K && mask.is_contiguous() && mask.scalar_type() == dtype,
              "lstm-bridge native: ", what, " needs a contiguous (", G, ", B, ", K, ") ", dtype,
              " mask with B dividing ", M, " rows; received ", mask.sizes(), " ", mask.scalar_type());
}

// Under one input dropout mask per gate (Keras's implementation 1): out (M, G H) = per gate q
// (a * m_q) w_q^T, a (M, K) (row r is batch row r % B), w (G H, K) any strides, mask (G, B, K); out a view of
// (M, G H) with unit column stride (the direction's column block of the projection), written in place.
// Each block of rows is masked per gate into a per-thread buffer and multiplied there: no (M, K) masked
// copy per gate and no (M, H) product copied into the projection afterwards.
at::Tensor gated_matmul_nt(const at::Tensor& a, const at::Tensor& w, const at::Tensor& mask, at::Tensor out) {
  TORCH_CHECK(a.dim() == 2 && w.dim() == 2 && a.size(1) == w.size(1) && a.scalar_type() == w.scalar_type() &&
                  (a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble) && a.stride(1) == 1,
              "lstm-bridge native: gated_matmul_nt needs float32/float64 a (M, K) with unit column stride and w (G H, K) "
              "of one dtype; received ", a.sizes(), " ", a.scalar_type(), " and ", w.sizes(), " ", w.scalar_type());
  const int64_t M = a.size(0), K = a.size(1), GH = w.size(0);
  const int64_t G = mask.dim() == 3 ? mask.size(0) : 0;
  TORCH_CHECK(G > 0 && GH % G == 0, "lstm-bridge native: gated_matmul_nt needs w's ", GH,
              " rows to split into the mask's gates; received mask ", mask.sizes());
  const int64_t H = GH / G;
  TORCH_CHECK(out.dim() == 2 && out.size(0) == M && out.size(1) == GH && out.stride(1) == 1 && out.scalar_type() == a.scalar_type(),
              "lstm-bridge native: gated_matmul_nt out must be an (", M, ", ", GH, ") ", a.scalar_type(),
              " view with unit column stride; received ", out.sizes(), " with strides ", out.strides());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "lstm_bridge_gated_matmul_nt", [&] {
    check_gate_masks<scalar_t>(mask, G, M, K, a.scalar_type(), "gated_matmul_nt");
    if (M == 0 || H == 0) return;
    if (K == 0) {
      out.zero_();
      return;
    }
    std::vector<RecGemm<scalar_t>> packs;
    for (int64_t q = 0; q < G; ++q) packs.push_back(pack_kernel_weights<scalar_t>(w.narrow(0, q * H, H), 0, true));
    const int64_t B = mask.size(1), lda = std::max<int64_t>(1, a.stride(0)), ldo = std::max<int64_t>(1, out.stride(0));
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* mp = mask.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    const RowBlocks rows_of = row_blocks(M, K, GH, sizeof(scalar_t));
    const int64_t block = rows_of.block;
    at::parallel_for(0, rows_of.blocks, rows_of.grain, [&](int64_t i0, int64_t i1) {
      std::vector<scalar_t> masked(static_cast<size_t>(block * K));
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t m0 = i * block, rows = std::min(block, M - m0);
        for (int64_t q = 0; q < G; ++q) {
          for (int64_t r = 0; r < rows; ++r) {
            const scalar_t* __restrict src = ap + (m0 + r) * lda;
            const scalar_t* __restrict mr = mp + (q * B + (m0 + r) % B) * K;
            scalar_t* __restrict dst = masked.data() + r * K;
            for (int64_t k = 0; k < K; ++k) dst[k] = src[k] * mr[k];
          }
          kernel_gemm<scalar_t>(packs[q], 0, rows, masked.data(), K, false, op + m0 * ldo + q * H, ldo);
        }
      }
    });
  });
  return out;
}

// The input gradient under one input dropout mask per gate: dx (M, K) = sum over q of (dz_q w_q) * m_q, dz_q
// the columns [col0 + q H, col0 + (q + 1) H) of dz (M, S), w (G H, K) any strides, mask (G, B, K); the gates'
// products are summed in gate order (((dz_0 w_0) m_0 + (dz_1 w_1) m_1) + ...), each row block's products
// formed in a per-thread buffer: no (M, K) product per gate and no masked copies.
at::Tensor gated_matmul_nn(const at::Tensor& dz, int64_t col0, const at::Tensor& w, const at::Tensor& mask) {
  TORCH_CHECK(dz.dim() == 2 && w.dim() == 2 && dz.scalar_type() == w.scalar_type() && dz.stride(1) == 1 &&
                  (dz.scalar_type() == at::kFloat || dz.scalar_type() == at::kDouble),
              "lstm-bridge native: gated_matmul_nn needs float32/float64 dz (M, S) with unit column stride and w (G H, K) "
              "of one dtype; received ", dz.sizes(), " ", dz.scalar_type(), " and ", w.sizes(), " ", w.scalar_type());
  const int64_t M = dz.size(0), S = dz.size(1), GH = w.size(0), K = w.size(1);
  const int64_t G = mask.dim() == 3 ? mask.size(0) : 0;
  TORCH_CHECK(G > 0 && GH % G == 0 && col0 >= 0 && col0 + GH <= S, "lstm-bridge native: gated_matmul_nn needs w's ", GH,
              " rows to split into the mask's gates and columns [col0, col0 + G H) inside dz's ", S,
              "; received mask ", mask.sizes(), ", col0 ", col0);
  const int64_t H = GH / G;
  at::Tensor dx = pooled_empty({M, K}, dz.options()).zero_();
  AT_DISPATCH_FLOATING_TYPES(dz.scalar_type(), "lstm_bridge_gated_matmul_nn", [&] {
    check_gate_masks<scalar_t>(mask, G, M, K, dz.scalar_type(), "gated_matmul_nn");
    if (M == 0 || K == 0 || H == 0) return;
    std::vector<RecGemm<scalar_t>> packs;  // w_q^T (K, H): its N = K columns over H
    for (int64_t q = 0; q < G; ++q) packs.push_back(pack_kernel_weights<scalar_t>(w.narrow(0, q * H, H).t(), 0, true));
    const int64_t B = mask.size(1), lds = std::max<int64_t>(1, dz.stride(0));
    const scalar_t* dp = dz.data_ptr<scalar_t>();
    const scalar_t* mp = mask.data_ptr<scalar_t>();
    scalar_t* xp = dx.data_ptr<scalar_t>();
    const RowBlocks rows_of = row_blocks(M, K, GH, sizeof(scalar_t));
    const int64_t block = rows_of.block;
    at::parallel_for(0, rows_of.blocks, rows_of.grain, [&](int64_t i0, int64_t i1) {
      std::vector<scalar_t> prod(static_cast<size_t>(block * K));
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t m0 = i * block, rows = std::min(block, M - m0);
        for (int64_t q = 0; q < G; ++q) {
          kernel_gemm<scalar_t>(packs[q], 0, rows, dp + m0 * lds + col0 + q * H, lds, false, prod.data(), K);
          for (int64_t r = 0; r < rows; ++r) {
            const scalar_t* __restrict pr = prod.data() + r * K;
            const scalar_t* __restrict mr = mp + (q * B + (m0 + r) % B) * K;
            scalar_t* __restrict dst = xp + (m0 + r) * K;
            for (int64_t k = 0; k < K; ++k) dst[k] = dst[k] + pr[k] * mr[k];
          }
        }
      }
    });
  });
  return dx;
}

// out (M, N) = a (M, K) @ w (N, K)^T through the micro-kernel (w with any strides: the packing reads
// them). The rows go in blocks small enough to stay in L2 while every packed panel of w passes over them
// (without blocking a thread streams all its rows of a from memory once per 64-column panel), blocks
// spread across threads. Into out when given: M*N contiguous elements of a's dtype, or an (M, N) view with
// unit column stride and any row stride (a column block of a wider matrix, e.g. one gate's columns of the
// projection). a may have any row stride too (unit column stride: a column block of dZ), read without a
// copy; or be 3-D (T, B, K) with unit last stride (the time-major view of a batch-first input): its rows
// (t, b) in that order, M = T*B, each step's B rows read in place. The copy a reshape would make cost 1-9 % of
// a layer's forward (benchmarks/batch_first_projection.py: medium 6 %, (200, 8, 128, 256) 9 %; a batch of 2
// rows, short micro-kernel tiles, still ran 6 % faster). Each output element is one pass of the micro-kernel
// over K, so the blocking never changes a bit. Used for the input projection and dx: at these shapes it ran
// 1.5-2.4x MKL's sgemm, which does not use AVX-512 on AMD.
at::Tensor matmul_nt(const at::Tensor& a_in, const at::Tensor& w, c10::optional<at::Tensor> out_opt) {
  TORCH_CHECK((a_in.dim() == 2 || a_in.dim() == 3) && w.dim() == 2 && a_in.size(-1) == w.size(1) &&
                  a_in.scalar_type() == w.scalar_type() && !a_in.is_cuda() && !w.is_cuda() &&
                  (a_in.scalar_type() == at::kFloat || a_in.scalar_type() == at::kDouble),
              "lstm-bridge native: matmul_nt needs CPU float32/float64 a (M, K) or (T, B, K) and w (N, K) of one "
              "dtype; received ", a_in.sizes(), " ", a_in.scalar_type(), " and ", w.sizes(), " ", w.scalar_type());
  // (T, B, K) read step by step in place: B rows of one step have one row stride
  const bool by_step = a_in.dim() == 3 && !a_in.is_contiguous() && a_in.stride(2) == 1 &&
                       a_in.stride(1) >= a_in.size(2);
  at::Tensor A = a_in;
  if (a_in.dim() == 3 && !by_step) A = a_in.reshape({a_in.size(0) * a_in.size(1), a_in.size(2)});
  // rows of a read with their own stride (a column block of a wider matrix needs no copy)
  if (A.dim() == 2 && !(A.stride(1) == 1 && A.stride(0) >= A.size(1))) A = A.contiguous();
  const int64_t steps = by_step ? A.size(0) : 1, step_rows = by_step ? A.size(1) : A.size(0);
  const int64_t M = steps * step_rows, K = A.size(-1), N = w.size(0);
  const int64_t lda = std::max<int64_t>(1, A.stride(-2)), step_stride = by_step ? A.stride(0) : 0;
  at::Tensor out;
  if (out_opt.has_value() && out_opt->defined()) {
    const at::Tensor& o = *out_opt;
    const bool strided_block = o.dim() == 2 && o.size(0) == M && o.size(1) == N && o.stride(1) == 1 && o.stride(0) >= N;
    TORCH_CHECK(o.scalar_type() == A.scalar_type() && (strided_block || (o.is_contiguous() && o.numel() == M * N)),
                "lstm-bridge native: matmul_nt out must be ", A.scalar_type(), " with ", M * N,
                " contiguous elements or an (", M, ", ", N, ") view with unit column stride; received ", o.sizes(),
                " with strides ", o.strides(), " ", o.scalar_type());
    out = strided_block ? o : o.view({M, N});
  } else {
    out = pooled_empty({M, N}, A.options());
  }
  if (M == 0 || N == 0) return out;
  if (K == 0) return out.zero_();
  AT_DISPATCH_FLOATING_TYPES(A.scalar_type(), "lstm_bridge_matmul_nt", [&] {
    const RecGemm<scalar_t> g = pack_kernel_weights<scalar_t>(w, 0, /*forward=*/true);
    const scalar_t* ap = A.data_ptr<scalar_t>();
    scalar_t* cp = out.data_ptr<scalar_t>();
    const int64_t ldc = std::max<int64_t>(1, out.stride(0));
    // blocks of rows within a step (by_step) or over all rows: item i is block i % per_step of step i / per_step
    const RowBlocks rows_of = row_blocks(step_rows, K, N, sizeof(scalar_t));
    const int64_t block = rows_of.block, per_step = rows_of.blocks;
    at::parallel_for(0, steps * per_step, rows_of.grain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t t = i / per_step, m0 = (i % per_step) * block, rows = std::min(block, step_rows - m0);
        kernel_gemm<scalar_t>(g, 0, rows, ap + t * step_stride + m0 * lda, lda, false,
                              cp + (t * step_rows + m0) * ldc, ldc);
      }
    });
  });
  return out;
}

// out (M, N) float32 = a (M, K) @ w (N, K)^T (+ bias (N), float32, added to the float32 product) with both
// operands rounded to bfloat16 and float32 accumulation (the recurrence's bf16 micro-kernel): the input
// projection of a bf16 layer, written in float32 straight into the buffer the recurrence reads (out, when
// given: M*N float32 elements), its bias already added (the kernel's pointwise pass then skips it).
// a and w: float32 or bfloat16 (bf16 values are exact in float32; a bfloat16 `a` is read as it is, its
// rows already being the micro-kernel's pairs when K is even).
at::Tensor matmul_nt_bf16(const at::Tensor& a, const at::Tensor& w, c10::optional<at::Tensor> out_opt,
                          c10::optional<at::Tensor> bias_opt) {
  const auto ok = [](const at::Tensor& t, int64_t max_dim) {
    return t.dim() >= 2 && t.dim() <= max_dim && !t.is_cuda() &&
           (t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16);
  };
  TORCH_CHECK(ok(a, 3) && ok(w, 2) && a.size(-1) == w.size(1),
              "lstm-bridge native: matmul_nt_bf16 needs CPU float32/bfloat16 a (M, K) or (T, B, K) and w (N, K); "
              "received ", a.sizes(), " ", a.scalar_type(), " and ", w.sizes(), " ", w.scalar_type());
  // a (T, B, K) read step by step in place, as matmul_nt does (bfloat16: where its rows are the micro-kernel's
  // pairs: K and the strides even, 4-byte aligned); anything else as contiguous rows
  const bool rows_in_place = a.scalar_type() == at::kFloat ||
                              (a.dim() == 3 && a.size(2) % 2 == 0 && a.stride(0) % 2 == 0 && a.stride(1) % 2 == 0 &&
                               reinterpret_cast<uintptr_t>(a.data_ptr()) % alignof(uint32_t) == 0);
  const bool by_step =
      a.dim() == 3 && rows_in_place && !a.is_contiguous() && a.stride(2) == 1 && a.stride(1) >= a.size(2);
  const at::Tensor A = by_step ? a : (a.dim() == 3 ? a.reshape({a.size(0) * a.size(1), a.size(2)}) : a).contiguous();
  const bool a_bf16 = A.scalar_type() == at::kBFloat16;
  const at::Tensor W = w.scalar_type() == at::kFloat ? w : w.to(at::kFloat);
  const int64_t steps = by_step ? A.size(0) : 1, step_rows = by_step ? A.size(1) : A.size(0);
  const int64_t M = steps * step_rows, K = A.size(-1), N = W.size(0);
  const int64_t lda = by_step ? A.stride(1) : K, step_stride = by_step ? A.stride(0) : 0;
  at::Tensor out;
  if (out_opt.has_value() && out_opt->defined()) {
    TORCH_CHECK(out_opt->scalar_type() == at::kFloat && out_opt->is_contiguous() && out_opt->numel() == M * N,
                "lstm-bridge native: matmul_nt_bf16 out must be contiguous float32 with ", M * N,
                " elements; received ", out_opt->sizes(), " ", out_opt->scalar_type());
    out = out_opt->view({M, N});
  } else {
    out = pooled_empty({M, N}, A.options().dtype(at::kFloat));  // (the pool: no fresh pages per call)
  }
  at::Tensor bias;
  if (bias_opt.has_value() && bias_opt->defined()) {
    TORCH_CHECK(bias_opt->dim() == 1 && bias_opt->size(0) == N && !bias_opt->is_cuda() &&
                    (bias_opt->scalar_type() == at::kFloat || bias_opt->scalar_type() == at::kBFloat16),
                "lstm-bridge native: matmul_nt_bf16 bias must be a CPU float32/bfloat16 (", N, ") tensor; received ",
                bias_opt->sizes(), " ", bias_opt->scalar_type());
    bias = bias_opt->to(at::kFloat).contiguous();
  }
  if (M == 0 || N == 0) return out;
  if (K == 0) return bias.defined() ? out.copy_(bias.expand({M, N})) : out.zero_();
  const Bf16Gemm g = pack_bf16_weights(W, 0, /*forward=*/true);
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  const int64_t kp = g.kp;
  float* cp = out.data_ptr<float>();
  // blocks of rows small enough that their bf16 pairs stay in L2 while every panel of W passes over them
  // (within a step when by_step: item i is block i % per_step of step i / per_step)
  const int64_t block = std::max<int64_t>(kBf16MR, std::min<int64_t>(96, (int64_t(1) << 17) / (2 * K)) /
                                                      kBf16MR * kBf16MR);
  const int64_t per_step = (step_rows + block - 1) / block;
  at::parallel_for(0, steps * per_step, 1, [&](int64_t i0, int64_t i1) {
    std::vector<uint32_t> pairs;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / per_step, b0 = (i % per_step) * block, rows = std::min(block, step_rows - b0);
      const int64_t m0 = t * step_rows + b0;
      if (!a_bf16) {
        bf16_gemm(g, 0, rows, A.data_ptr<float>() + t * step_stride + b0 * lda, lda, false, cp + m0 * N, N, bp);
        continue;
      }
      const uint16_t* a16 = reinterpret_cast<const uint16_t*>(A.data_ptr<at::BFloat16>()) + t * step_stride + b0 * lda;
      if (K % 2 == 0 && reinterpret_cast<uintptr_t>(a16) % alignof(uint32_t) == 0) {  // the rows are the pairs
        bf16_gemm_pairs(g, 0, rows, reinterpret_cast<const uint32_t*>(a16), by_step ? lda / 2 : kp, false,
                        cp + m0 * N, N, bp);
        continue;
      }
      pairs.resize(static_cast<size_t>(rows * kp));
      for (int64_t m = 0; m < rows; ++m) copy_pairs(a16 + m * K, K, pairs.data() + m * kp);
      bf16_gemm_pairs(g, 0, rows, pairs.data(), kp, false, cp + m0 * N, N, bp);
    }
  });
  return out;
}

// One activation over a contiguous CPU tensor, exactly as the recurrence applies it. Used by the tests
// (bit-exactness of the MindSpore emulations, agreement of the others with torch).
at::Tensor apply_activation(int64_t id, const at::Tensor& x, bool bf16) {
  TORCH_CHECK(id >= 0 && id < kNumActs, "lstm-bridge native: unknown activation id ", id, " (expected 0..",
              kNumActs - 1, ")");
  TORCH_CHECK(!x.is_cuda() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "lstm-bridge native: apply_activation needs a float32/float64 CPU tensor; received ",
              x.scalar_type());
  const at::Tensor src = x.contiguous();
  at::Tensor dst = at::empty_like(src);
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "lstm_bridge_apply_activation", [&] {
    step_act<scalar_t>(bf16, id, src.data_ptr<scalar_t>(), dst.data_ptr<scalar_t>(), src.numel());
  });
  return dst;
}

// How many distinct threads at::parallel_for gives `items` single-item tasks: a build without OpenMP
// (where at::parallel_for silently runs serially) answers 1. Used by the tests.
int64_t parallel_threads(int64_t items) {
  std::vector<int64_t> thread_of(static_cast<size_t>(std::max<int64_t>(items, 0)), -1);
  at::parallel_for(0, items, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) thread_of[i] = at::get_thread_num();
  });
  std::sort(thread_of.begin(), thread_of.end());
  return std::unique(thread_of.begin(), thread_of.end()) - thread_of.begin();
}

}  // namespace lstm_bridge

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  namespace py = pybind11;
  using lstm_bridge::LayerConfig;
  m.doc() = "lstm-bridge fused LSTM recurrence (CPU). Shape contract: lstm.h.";
  py::class_<LayerConfig>(m, "LayerConfig")
      .def(py::init<>())
      .def_readwrite("offsets", &LayerConfig::offsets)
      .def_readwrite("reverse", &LayerConfig::reverse)
      .def_readwrite("gate_act", &LayerConfig::gate_act)
      .def_readwrite("cand_act", &LayerConfig::cand_act)
      .def_readwrite("cell_act", &LayerConfig::cell_act)
      .def_readwrite("carry", &LayerConfig::carry)
      .def_readwrite("save", &LayerConfig::save)
      .def_readwrite("gemm", &LayerConfig::gemm)
      .def_readwrite("bf16", &LayerConfig::bf16);
  m.def("forward", &lstm_bridge::lstm_forward, "Fused LSTM layer forward (see lstm.h)", py::arg("cfg"),
        py::arg("xp"), py::arg("w_hh"), py::arg("h0"), py::arg("c0"), py::arg("valid"), py::arg("rec_mask"),
        py::arg("bias"));
  m.def("backward", &lstm_bridge::lstm_backward, "Fused LSTM layer backward (see lstm.h)", py::arg("cfg"),
        py::arg("gates"), py::arg("grad_out"), py::arg("grad_hn"), py::arg("grad_cn"), py::arg("c_prev"),
        py::arg("w_hh"), py::arg("valid"), py::arg("rec_mask"));
  m.def("apply_activation", &lstm_bridge::apply_activation,
        "One activation (enum Act id) over a tensor, as the recurrence computes it (bf16: as a bf16 layer's "
        "recurrence does, for float32)",
        py::arg("id"), py::arg("x"), py::arg("bf16") = false);
  m.def("matmul_nt", &lstm_bridge::matmul_nt,
        "a (M, K) or (T, B, K) @ w (N, K)^T -> (M or T*B, N) through the recurrence's micro-kernel (w any "
        "strides), into out if given",
        py::arg("a"), py::arg("w"), py::arg("out") = py::none());
  m.def("gate_weight_grad", &lstm_bridge::gate_weight_grad,
        "(G H, N): block q = dz[:, col0 + qH : col0 + (q+1)H]^T (src * mask[q or 0]) over all rows (dW_hh, dW_ih)",
        py::arg("dz"), py::arg("col0"), py::arg("gates"), py::arg("hidden"), py::arg("src"), py::arg("mask"));
  m.def("gated_matmul_nt", &lstm_bridge::gated_matmul_nt,
        "out (M, G H) view = per gate q: (a * mask[q][row % B]) @ w[qH:(q+1)H]^T (the projection under per-gate "
        "input dropout), in place",
        py::arg("a"), py::arg("w"), py::arg("mask"), py::arg("out"));
  m.def("gated_matmul_nn", &lstm_bridge::gated_matmul_nn,
        "dx (M, K) = sum over q of (dz[:, col0 + qH : col0 + (q+1)H] @ w[qH:(q+1)H]) * mask[q][row % B]",
        py::arg("dz"), py::arg("col0"), py::arg("w"), py::arg("mask"));
  m.def("pool_release", &lstm_bridge::pool_release,
        "hand every cached block of the kernel's buffer pool back to the system allocator (buffer_pool.cpp)");
  m.def("pooled_empty",
        [](std::vector<int64_t> sizes, py::object dtype) {
          return lstm_bridge::pooled_empty(sizes, at::TensorOptions().dtype(torch::python::detail::py_object_to_dtype(dtype)));
        },
        "a new uninitialised contiguous CPU tensor whose storage comes from the kernel's buffer pool",
        py::arg("sizes"), py::arg("dtype"));
  m.def("pool_set_limit", &lstm_bridge::pool_set_limit,
        "the most bytes the kernel's buffer pool keeps free (0: pooling off); lowering it releases blocks",
        py::arg("bytes"));
  m.def("pool_stats", []() {
    const lstm_bridge::PoolStats s = lstm_bridge::pool_stats();
    py::dict d;
    d["cached_bytes"] = s.cached_bytes;
    d["cached_blocks"] = s.cached_blocks;
    d["limit_bytes"] = s.limit_bytes;
    d["reused"] = s.reused;
    d["fresh"] = s.fresh;
    return d;
  }, "the kernel's buffer pool: cached_bytes, cached_blocks, limit_bytes, reused, fresh (requests so far)");
  m.def("matmul_nt_bf16", &lstm_bridge::matmul_nt_bf16,
        "a (M, K) @ w (N, K)^T (+ bias) in float32 from bf16-rounded operands (the bf16 micro-kernel), into out "
        "if given",
        py::arg("a"), py::arg("w"), py::arg("out") = py::none(), py::arg("bias") = py::none());
  lstm_bridge::register_family(m);  // GRU / simple RNN (family.cpp)
  m.def("parallel_threads", &lstm_bridge::parallel_threads,
        "Distinct threads at::parallel_for uses for `items` tasks (1 in a build without OpenMP)",
        py::arg("items"));
#ifdef _OPENMP
  m.attr("OPENMP") = true;
#else
  m.attr("OPENMP") = false;
#endif
#ifdef LSTM_BRIDGE_MKL_PACKED
  m.attr("HAS_PACKED_GEMM") = true;
#else
  m.attr("HAS_PACKED_GEMM") = false;
#endif
  // The bf16 recurrent GEMM uses AVX512_BF16's dot product on this CPU (else an exact float emulation).
  m.attr("HAS_BF16_DOT") = lstm_bridge::has_bf16_dot();
  m.attr("GEMM_KERNEL") = static_cast<int64_t>(lstm_bridge::kGemmKernel);
  m.attr("GEMM_MKL") = static_cast<int64_t>(lstm_bridge::kGemmMkl);
  m.attr("GEMM_ATEN") = static_cast<int64_t>(lstm_bridge::kGemmAten);
  m.attr("NUM_ACTIVATIONS") = static_cast<int64_t>(lstm_bridge::kNumActs);
  m.attr("COLUMN_SPLIT_MAX_ROWS") = lstm_bridge::kColSplitMaxRows;
  m.attr("COLUMN_SPLIT_MIN_BYTES") = lstm_bridge::kColSplitMinBytes;
  m.attr("COLUMN_SPLIT_MID_MAX_ROWS") = lstm_bridge::kColSplitMidMaxRows;
  m.attr("COLUMN_SPLIT_MID_BYTES") = lstm_bridge::kColSplitMidBytes;
  m.attr("COLUMN_SPLIT_LARGE_MAX_ROWS") = lstm_bridge::kColSplitLargeMaxRows;
  m.attr("COLUMN_SPLIT_LARGE_BYTES") = lstm_bridge::kColSplitLargeBytes;
  m.attr("PANEL_WIDTH_FLOAT") = lstm_bridge::panel_width<float>();
  m.attr("PANEL_WIDTH_DOUBLE") = lstm_bridge::panel_width<double>();
}
