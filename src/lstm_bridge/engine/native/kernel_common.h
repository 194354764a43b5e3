// lstm-bridge native CPU kernels: the pieces every recurrence shares (LSTM in lstm.cpp, GRU/RNN in
// family.cpp): activations and their gradients (enum Act in lstm.h), the register-blocked micro-kernel
// GEMM over weights packed once per call (plus MKL's packed GEMM), and the (direction, row block) work
// split. Everything is in an anonymous namespace: each translation unit gets its own inline copies.
#pragma once

#include "lstm.h"


#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>

#ifdef LSTM_BRIDGE_MKL_PACKED
// MKL's packed-GEMM API (exported by libtorch_cpu when torch is built with MKL; the build checks):
// W_hh is packed once per call and stays in MKL's internal layout for every step.
extern "C" {
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k);
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha, const float* src,
                      int ld, float* dest);
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc);
}
namespace {
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162;
}
#endif

#ifdef LSTM_BRIDGE_SLEEF_TANH_U35
// Sleef's 3.5-ulp float32 tanh, exported by libtorch_cpu (the build checks). at::vec's tanh is the
// 1-ulp variant, 2.5x slower; the tanh of c_t and of the candidate was the largest cost outside the GEMMs.
#include <immintrin.h>
extern "C" {
#if defined(CPU_CAPABILITY_AVX512)
__m512 Sleef_tanhf16_u35avx512f(__m512);
#elif defined(CPU_CAPABILITY_AVX2)
__m256 Sleef_tanhf8_u35avx2(__m256);
#endif
}
#endif

namespace lstm_bridge {
namespace {

using at::vec::Vectorized;

// float32 tanh, vectorised: Sleef's 3.5-ulp variant where exported, else at::vec's (1 ulp).
inline Vectorized<float> fast_tanh(const Vectorized<float>& x) {
#if defined(LSTM_BRIDGE_SLEEF_TANH_U35) && defined(CPU_CAPABILITY_AVX512)
  return Vectorized<float>(Sleef_tanhf16_u35avx512f(x));
#elif defined(LSTM_BRIDGE_SLEEF_TANH_U35) && defined(CPU_CAPABILITY_AVX2)
  return Vectorized<float>(Sleef_tanhf8_u35avx2(x));
#else
  return x.tanh();
#endif
}

// 16 float32 lanes (GCC vector type: one AVX-512 register where the build has them, else split by the compiler).
typedef float F32x16 __attribute__((vector_size(64)));

// Keras 2's hard sigmoid clamp(x * 0.2 + 0.5, 0, 1) or Keras 3's clamp(x + 3, 0, 6) / 6 in float32 (apply_act),
// the values of at::vec's minimum/maximum (NaN kept) with plain compares: those NaN-propagating functions cost
// twice the arithmetic (a medium step's 24576 gate values: 2.08 -> 1.81 us, call included).

inline F32x16 hard_sigmoid16(F32x16 x, bool keras3) {
  const float hi = keras3 ? 6.0f : 1.0f;
  F32x16 v = keras3 ? x + 3.0f : x * 0.2f + 0.5f;
  v = v < 0.0f ? F32x16{} : v;
  v = v > hi ? F32x16{} + hi : v;
  return keras3 ? v / 6.0f : v;
}

// dst[j] = f(src[j]) for j < n, 16 lanes at a time (f: F32x16 -> F32x16); the last partial vector goes through
// a zero-padded copy. src and dst may alias. Always inlined, so the loop takes its caller's float options
// (the bf16 tanh's FMA contraction: through a separate copy it ran ~6 % slower).
template <typename F>
__attribute__((always_inline)) inline void map_lanes16(const float* src, float* dst, int64_t n, F f) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    F32x16 a;
    std::memcpy(&a, src + j, sizeof(a));
    const F32x16 t = f(a);
    std::memcpy(dst + j, &t, sizeof(t));
  }
  if (j < n) {
    float a[16] = {}, t[16];
    std::memcpy(a, src + j, sizeof(float) * (n - j));
    F32x16 v;
    std::memcpy(&v, a, sizeof(v));
    const F32x16 r = f(v);
    std::memcpy(t, &r, sizeof(t));
    std::memcpy(dst + j, t, sizeof(float) * (n - j));
  }
}

void hard_sigmoid(const float* src, float* dst, int64_t n, bool keras3) {
  map_lanes16(src, dst, n, [keras3](F32x16 v) { return hard_sigmoid16(v, keras3); });
}

// Elementwise activation, vectorised; src and dst may alias. Mirrors the torch path's formulas op for
// op (the build disables FMA contraction) so that both paths round alike, except float32 tanh, which
// may use Sleef's 3.5-ulp variant (see fast_tanh; oneDNN's own LSTM uses an approximation too), and the
// float32 hard sigmoids (same values by plain compares: hard_sigmoid).
template <typename T, typename F>
inline void map_vec(const T* src, T* dst, int64_t n, F f) {
  using V = Vectorized<T>;
  int64_t j = 0;
  for (; j + V::size() <= n; j += V::size()) f(V::loadu(src + j)).store(dst + j);
  if (j < n) {
    const int64_t rest = n - j;
    f(V::loadu(src + j, rest)).store(dst + j, rest);
  }
}

// MindSpore's CPU float32 Sigmoid/Tanh (docs/spec/mindspore_lstm.md §3), computed in float32 with true fused
// multiply-adds whatever T is, exactly as lstm_bridge.activations.ms_cpu_sigmoid/ms_cpu_tanh.
// Both are branch-free so that the loops calling them vectorise (checked with -fopt-info-vec): a
// per-element scalar loop made MindSpore's numerics the slowest variant.
inline float ms_cpu_tanh(float x) {
  const float s = x * x;
  const float a = std::fma(std::fma(s + 378.0f, s, 17325.0f), s, 135135.0f) * x;
  const float b = std::fma(std::fma(std::fma(28.0f, s, 3150.0f), s, 62370.0f), s, 135135.0f);
  const float r = a / b;  // inf/inf = NaN beyond the cut: selected away below
  return x > 5.0f ? 1.0f : (x < -5.0f ? -1.0f : r);
}

inline float ms_cpu_sigmoid(float x) {
  const float arg = std::min(std::max(-x, -87.3365478515625f), 88.72283935546875f);
  const float k = std::floor(std::fma(arg, 1.44269504088896341f, 0.5f));
  const float d = std::fma(-k, 0.693147f, arg);
  float p = std::fma(d, 1.0f / 120.0f, 1.0f / 24.0f);
  p = std::fma(d, p, 1.0f / 6.0f);
  p = std::fma(d, p, 0.5f);
  p = std::fma(d, p, 1.0f);
  p = std::fma(d, p, 1.0f);
  // 2^k as 2^(k-1) * 2: (k+127)<<23 would overflow at k = 128, MindSpore's kernel stays finite
  const int32_t bits = (static_cast<int32_t>(k) + 126) << 23;
  float half;
  std::memcpy(&half, &bits, sizeof(half));
  const float e = (p * half) * 2.0f;
  return 1.0f / (1.0f + e);
}

template <typename T>
void apply_act(int64_t id, const T* src, T* dst, int64_t n) {
  using V = Vectorized<T>;
  const V one(T(1));
  const V zero(T(0));
  switch (id) {
    case kSigmoid:
      map_vec(src, dst, n, [&](V x) { return one / (one + x.neg().exp()); });
      break;
    case kTanh:
      if constexpr (std::is_same<T, float>::value) {
        map_vec(src, dst, n, [](V x) { return fast_tanh(x); });
      } else {
        map_vec(src, dst, n, [](V x) { return x.tanh(); });
      }
      break;
    case kHardSigmoidKeras2: {
      if constexpr (std::is_same<T, float>::value) {
        hard_sigmoid(src, dst, n, false);
        break;
      }
      const V a(T(0.2)), b(T(0.5));
      map_vec(src, dst, n, [&](V x) { return at::vec::minimum(at::vec::maximum(x * a + b, zero), one); });
      break;
    }
    case kHardSigmoidKeras3: {
      if constexpr (std::is_same<T, float>::value) {
        hard_sigmoid(src, dst, n, true);
        break;
      }
      const V three(T(3)), six(T(6));
      map_vec(src, dst, n,
              [&](V x) { return at::vec::minimum(at::vec::maximum(x + three, zero), six) / six; });
      break;
    }
    case kRelu:
      map_vec(src, dst, n, [&](V x) { return at::vec::maximum(x, zero); });
      break;
    case kLinear:
      if (src != dst) std::memcpy(dst, src, sizeof(T) * n);
      break;
    case kSoftsign:
      map_vec(src, dst, n, [&](V x) { return x / (one + x.abs()); });
      break;
    case kMsCpuSigmoid:
      for (int64_t j = 0; j < n; ++j) dst[j] = static_cast<T>(ms_cpu_sigmoid(static_cast<float>(src[j])));
      break;
    case kMsCpuTanh:
      for (int64_t j = 0; j < n; ++j) dst[j] = static_cast<T>(ms_cpu_tanh(static_cast<float>(src[j])));
      break;
    default:
      TORCH_CHECK(false, "lstm-bridge native: unknown activation id ", id, " (expected 0..", kNumActs - 1, ")");
  }
}

// g[j] *= act'(.) expressed through the activation's output y[j]. Each case is a plain loop the
// compiler vectorises (no transcendental functions).
template <typename T>
void mul_act_grad(int64_t id, T* g, const T* y, int64_t n) {
  switch (id) {
    case kSigmoid:
    case kMsCpuSigmoid:  // MindSpore's SigmoidGrad: dy * y * (1 - y)
      for (int64_t j = 0; j < n; ++j) g[j] = g[j] * ((T(1) - y[j]) * y[j]);
      break;
    case kTanh:
    case kMsCpuTanh:  // MindSpore's TanhGrad: dy * (1 - y^2)
      for (int64_t j = 0; j < n; ++j) g[j] = g[j] * (T(1) - y[j] * y[j]);
      break;
    case kHardSigmoidKeras2:
      for (int64_t j = 0; j < n; ++j) g[j] = (y[j] > T(0) && y[j] < T(1)) ? g[j] * T(0.2) : T(0);
      break;
    case kHardSigmoidKeras3:
      for (int64_t j = 0; j < n; ++j) g[j] = (y[j] > T(0) && y[j] < T(1)) ? g[j] / T(6) : T(0);
      break;
    case kRelu:
      for (int64_t j = 0; j < n; ++j) g[j] = y[j] > T(0) ? g[j] : T(0);
      break;
    case kLinear:
      break;
    case kSoftsign:
      for (int64_t j = 0; j < n; ++j) {
        const T a = T(1) - std::abs(y[j]);
        g[j] = g[j] * (a * a);
      }
      break;
    default:
      TORCH_CHECK(false, "lstm-bridge native: unknown activation id ", id, " (expected 0..", kNumActs - 1, ")");
  }
}

// ---- the per-step recurrent GEMM --------------------------------------------------------------------
// Three interchangeable implementations (LayerConfig::gemm):
//  kGemmKernel: our register-blocked micro-kernel (at::vec FMA) over W_hh packed once per call into
//               column panels that stay resident in cache; no dispatch, no per-step packing;
//  kGemmMkl:    MKL's packed-GEMM API (float32, builds with MKL only);
//  kGemmAten:   at::mm_out / at::bmm_out into a scratch buffer (portable reference).
// forward: z(M, N) += h(M, K) W^T (N = 4H, K = H; per gate N = K = H for G = 4 masks);
// backward: dh(M, H) = dz(M, 4H) W (K = 4H, N = H; per gate K = N = H for G = 4 masks).

template <typename T>
struct RecGemm {
  int64_t path = kGemmAten;
  int64_t n = 0, k = 0, panels = 0;
  at::Tensor buffer;              // owns the packed weights
  std::vector<const T*> parts;    // packed weights per piece: 1, or 4 for per-gate masks
  bool active() const { return !parts.empty(); }
};

// Micro-kernel vectors: GCC vector extensions of the build's register width (the accumulators then
// stay in registers; FMA contraction is enabled for the micro-kernel only, see micro_kernel).
#if defined(CPU_CAPABILITY_AVX512)
constexpr int64_t kVecBytes = 64;
#elif defined(CPU_CAPABILITY_AVX2)
constexpr int64_t kVecBytes = 32;
#else
constexpr int64_t kVecBytes = 16;
#endif
template <typename T>
struct VecOf {
  typedef T type __attribute__((vector_size(kVecBytes)));
};

// Micro-kernel shape: MR rows x kPanelVecs vector registers of columns (MR * kPanelVecs accumulators,
// sized to the register file: 32 zmm with AVX-512, 16 ymm/xmm otherwise). MR = 4 keeps the kernel
// full when a thread owns only a few batch rows.
#if defined(CPU_CAPABILITY_AVX512)
#define LSTM_BRIDGE_PANEL_VECS 4
#define LSTM_BRIDGE_MR 4
#else
#define LSTM_BRIDGE_PANEL_VECS 2
#define LSTM_BRIDGE_MR 6
#endif
constexpr int64_t kPanelVecs = LSTM_BRIDGE_PANEL_VECS;
constexpr int kMR = LSTM_BRIDGE_MR;

// Number of columns per panel.
template <typename T>
constexpr int64_t panel_width() { return kPanelVecs * kVecBytes / static_cast<int64_t>(sizeof(T)); }

// dst[j * ldd + i] = src[i * lds + j] for i, j < 16: one 16 x 16 float block transposed in registers
// (the packing of row-major weights into column panels). Returns false where the build has no AVX-512.
inline bool transpose_block16(const float* src, int64_t lds, float* dst, int64_t ldd) {
#if defined(CPU_CAPABILITY_AVX512)
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int h = 0; h < 16; h += 8) {
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
  for (int j = 0; j < 16; ++j) _mm512_storeu_ps(dst + j * ldd, r[j]);
  return true;
#else
  (void)src;
  (void)lds;
  (void)dst;
  (void)ldd;
  return false;
#endif
}

template <typename T>
RecGemm<T> pack_kernel_weights(const at::Tensor& w, int64_t G, bool forward) {
  RecGemm<T> g;
  g.path = kGemmKernel;
  const int64_t H = w.size(1), NR = panel_width<T>();
  const int64_t pieces = G == 4 ? 4 : 1;
  // forward with one piece packs any (N, K) weight (W_hh: N = 4H; also W_ih for matmul_nt)
  g.n = forward ? (pieces == 4 ? H : w.size(0)) : H;
  g.k = forward ? H : (pieces == 4 ? H : w.size(0));  // one piece: all of W's rows (4H for W_hh)
  g.panels = (g.n + NR - 1) / NR;
  const int64_t piece_size = g.panels * g.k * NR;
  g.buffer = at::empty({pieces * piece_size}, w.options());
  T* dst = g.buffer.template data_ptr<T>();
  // W (4H, H) with any strides: Keras's recurrent_kernel arrives transposed, and copying it to
  // contiguous first would cost a pass over W_hh per call for nothing.
  const T* W = w.template data_ptr<T>();
  const int64_t s0 = w.stride(0), s1 = w.stride(1);
  const int64_t n = g.n, k = g.k, panels = g.panels;
  // one task per (piece, panel); large weights are packed by all threads
  at::parallel_for(0, pieces * panels, std::max<int64_t>(1, 65536 / (k * NR)), [&](int64_t i0, int64_t i1) {
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t q = item / panels, p = item % panels;
      const int64_t row0 = pieces == 4 ? q * H : 0, n0 = p * NR, cols = std::min<int64_t>(NR, n - n0);
      T* __restrict panel = dst + q * piece_size + p * k * NR;
      // element (kk, c) of the panel: forward W[row0 + n0 + c][kk], backward W[row0 + kk][n0 + c]
      const T* __restrict src = forward ? W + (row0 + n0) * s0 : W + row0 * s0 + n0 * s1;
      const int64_t sc = forward ? s0 : s1, sk = forward ? s1 : s0;  // strides along c and along kk
      if (cols < NR) {  // columns past n are zero padding
        for (int64_t kk = 0; kk < k; ++kk) std::fill(panel + kk * NR + cols, panel + (kk + 1) * NR, T(0));
      }
      if (sc == 1) {  // a panel row is a run of W: copy it
        for (int64_t kk = 0; kk < k; ++kk) std::memcpy(panel + kk * NR, src + kk * sk, sizeof(T) * cols);
      } else {  // transpose, 16 panel rows at a time so the block being written stays in L1
        for (int64_t kb = 0; kb < k; kb += 16) {
          const int64_t ke = std::min<int64_t>(k, kb + 16);
          int64_t c0 = 0;
          if constexpr (std::is_same<T, float>::value) {
            if (sk == 1 && ke - kb == 16) {
              for (; c0 + 16 <= cols; c0 += 16) {
                if (!transpose_block16(src + c0 * sc + kb, sc, panel + kb * NR + c0, NR)) break;
              }
            }
          }
          for (int64_t c = c0; c < cols; ++c) {
            const T* __restrict s = src + c * sc;
            for (int64_t kk = kb; kk < ke; ++kk) panel[kk * NR + c] = s[kk * sk];
          }
        }
      }
    }
  });
  for (int64_t q = 0; q < pieces; ++q) g.parts.push_back(dst + q * piece_size);
  return g;
}

// C(MR rows, one panel) (+)= A(MR, K) Bp(K, NR): MR x kPanelVecs vector accumulators, one pass over K.
// A's element (r, kk) is A[r * lda + kk], or with KMajor A[kk * lda + r] (A^T stored row-major: a column
// block of a matrix whose rows run over K, as the weight gradients read dZ).
// fp-contract=fast here only: a GEMM accumulates with FMA like MKL/oneDNN do.
template <typename T, int MR, bool KMajor = false>
__attribute__((optimize("fp-contract=fast"))) inline void micro_kernel(int64_t K, const T* A, int64_t lda,
                                                                       const T* Bp, T* C, int64_t ldc,
                                                                       int64_t ncols, bool accumulate) {
  typedef typename VecOf<T>::type V;
  constexpr int64_t L = kVecBytes / static_cast<int64_t>(sizeof(T));
  constexpr int NV = static_cast<int>(kPanelVecs);
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = V{};
  }
  for (int64_t kk = 0; kk < K; ++kk) {
    V b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) __builtin_memcpy(&b[v], Bp + (kk * NV + v) * L, sizeof(V));
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const T a = KMajor ? A[kk * lda + r] : A[r * lda + kk];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] += b[v] * a;
    }
  }
  if (ncols == NV * L) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      T* c = C + r * ldc;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        if (accumulate) {
          V cv;
          __builtin_memcpy(&cv, c + v * L, sizeof(V));
          acc[r][v] = cv + acc[r][v];
        }
        __builtin_memcpy(c + v * L, &acc[r][v], sizeof(V));
      }
    }
    return;
  }
  for (int r = 0; r < MR; ++r) {
    T tmp[NV * L];
    for (int v = 0; v < NV; ++v) __builtin_memcpy(tmp + v * L, &acc[r][v], sizeof(V));
    T* c = C + r * ldc;
    for (int64_t j = 0; j < ncols; ++j) c[j] = accumulate ? c[j] + tmp[j] : tmp[j];
  }
}

template <typename T, int R, bool KMajor = false>
inline void micro_tail(int64_t rows, int64_t K, const T* A, int64_t lda, const T* Bp, T* C, int64_t ldc,
                       int64_t ncols, bool accumulate) {
  if constexpr (R > 0) {
    if (rows == R) {
      micro_kernel<T, R, KMajor>(K, A, lda, Bp, C, ldc, ncols, accumulate);
      return;
    }
    micro_tail<T, R - 1, KMajor>(rows, K, A, lda, Bp, C, ldc, ncols, accumulate);
  }
}

// Software prefetch (for writing, into L2) of rows [m, m + rows) of C's panel at column c0, ncols wide.
template <typename T>
inline void prefetch_tile(const T* C, int64_t ldc, int64_t m, int64_t rows, int64_t c0, int64_t ncols) {
  constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(T));
  for (int64_t r = m; r < m + rows; ++r) {
    for (int64_t j = 0; j < ncols; j += kLine) __builtin_prefetch(C + r * ldc + c0 + j, 1, 2);
  }
}

// C(M, n) (+)= A(M, k) B over the packed panels. ``next_c`` (optional, same ldc): the block the caller's
// next GEMM will accumulate into (the next step's pre-activations, written long ago by the input GEMM
// and cold); each micro-tile prefetches its tile of it, so its load from memory overlaps this GEMM's
// arithmetic instead of stalling the pointwise pass that follows.
template <typename T>
void kernel_gemm(const RecGemm<T>& g, int q, int64_t M, const T* A, int64_t lda, bool accumulate, T* C,
                 int64_t ldc, const T* next_c = nullptr) {
  constexpr int64_t NR = panel_width<T>();
  const T* piece = g.parts[q];
  for (int64_t p = 0; p < g.panels; ++p) {
    const T* Bp = piece + p * g.k * NR;
    const int64_t ncols = std::min<int64_t>(NR, g.n - p * NR);
    T* Cp = C + p * NR;
    int64_t m = 0;
    for (; m + kMR <= M; m += kMR) {
      if (next_c != nullptr) prefetch_tile<T>(next_c, ldc, m, kMR, p * NR, ncols);
      micro_kernel<T, kMR>(g.k, A + m * lda, lda, Bp, Cp + m * ldc, ldc, ncols, accumulate);
    }
    if (next_c != nullptr && m < M) prefetch_tile<T>(next_c, ldc, m, M - m, p * NR, ncols);
    if (m < M) micro_tail<T, kMR - 1>(M - m, g.k, A + m * lda, lda, Bp, Cp + m * ldc, ldc, ncols, accumulate);
  }
}

template <typename T>
RecGemm<T> pack_mkl_weights(const at::Tensor& w, int64_t M, int64_t G, bool forward) {
  RecGemm<T> g;
#ifdef LSTM_BRIDGE_MKL_PACKED
  if constexpr (std::is_same<T, float>::value) {
    g.path = kGemmMkl;
    const int H = static_cast<int>(w.size(1));
    const int pieces = G == 4 ? 4 : 1;
    g.n = forward ? (pieces == 4 ? H : 4 * H) : H;
    g.k = forward ? H : (pieces == 4 ? H : 4 * H);
    const int trans = forward ? kTrans : kNoTrans;
    const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, static_cast<int>(M), g.n, g.k);
    const int64_t floats = static_cast<int64_t>(((bytes + sizeof(float) - 1) / sizeof(float) + 15) / 16 * 16);
    g.buffer = at::empty({floats * pieces}, w.options());
    float* dest = g.buffer.template data_ptr<float>();
    const float* src = w.data_ptr<float>();
    for (int q = 0; q < pieces; ++q) {
      float* d = dest + q * floats;
      cblas_sgemm_pack(kRowMajor, kBMatrix, trans, static_cast<int>(M), static_cast<int>(g.n),
                       static_cast<int>(g.k), 1.0f, src + static_cast<int64_t>(q) * H * H, H, d);
      g.parts.push_back(d);
    }
  }
#endif
  (void)w;
  (void)M;
  (void)G;
  (void)forward;
  return g;
}

// C(M, n) (+)= A(M, k) B through whichever packed path g holds. Only called when g.active().
template <typename T>
inline void rec_gemm(const RecGemm<T>& g, int q, int64_t M, const T* A, int64_t lda, bool accumulate, T* C,
                     int64_t ldc, const T* next_c = nullptr) {
  if (g.path == kGemmKernel) {
    kernel_gemm<T>(g, q, M, A, lda, accumulate, C, ldc, next_c);
    return;
  }
#ifdef LSTM_BRIDGE_MKL_PACKED
  if constexpr (std::is_same<T, float>::value) {
    cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, static_cast<int>(M), static_cast<int>(g.n),
                        static_cast<int>(g.k), A, static_cast<int>(lda), g.parts[q], static_cast<int>(g.n),
                        accumulate ? 1.0f : 0.0f, C, static_cast<int>(ldc));
    return;
  }
#endif
  TORCH_CHECK(false, "lstm-bridge native: GEMM path ", g.path, " is not available in this build");
}

// How the work is split: items are (direction, block of batch rows). Rows of an LSTM never interact, so
// each item runs its rows through all T steps on one thread (its GEMMs single-threaded inside the
// parallel region): no synchronisation inside the time loop. Bidirectional layers give one direction
// per thread; a single direction splits the batch across the threads.
inline int64_t chunks_per_direction(int64_t D, int64_t B) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t chunks = (threads + D - 1) / D;
  return std::max<int64_t>(1, std::min(chunks, B));
}

// Below this much recurrent work (multiply-adds over the whole sequence) a layer runs on the calling
// thread: waking a second thread costs more than it saves.
constexpr int64_t kParallelWork = int64_t(1) << 18;

template <typename F>
void for_each_item(int64_t D, int64_t B, int64_t work, F run_rows) {
  if (work < kParallelWork) {
    for (int64_t d = 0; d < D; ++d) run_rows(d, 0, B);
    return;
  }
  const int64_t chunks = chunks_per_direction(D, B);
  at::parallel_for(0, D * chunks, 1, [&](int64_t i0, int64_t i1) {
    at::NoGradGuard no_grad;  // grad mode is thread-local: worker threads start with it on
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t d = item / chunks, q = item % chunks;
      run_rows(d, B * q / chunks, B * (q + 1) / chunks);
    }
  });
}

}  // namespace
}  // namespace lstm_bridge
