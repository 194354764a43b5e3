// lstm-bridge native CPU kernel: the LSTM recurrence of one (bi)directional layer.
//
// Shape contract (time-major; T steps, B batch rows, D directions, H_d hidden units of direction d,
// S = sum_d 4*H_d):
//
//   xp        (T, B, S)   float32|float64, contiguous. Direction d's pre-activations
//                         W_ih x_t + b_ih + b_hh occupy columns [offsets[d], offsets[d] + 4*H_d), gate
//                         order i, f, g, o. The input projection (one GEMM for all steps and all
//                         directions) is done by the caller. forward() OVERWRITES xp in place: after it,
//                         xp holds the gates after activation (i, f, g, o) of every step, which is what
//                         backward() reads.
//   w_hh[d]   (4H_d, H_d) recurrent weights (canonical layout; need not be contiguous).
//   h0[d], c0[d]  (B, H_d) initial state.
//   valid     (T, B) uint8 (1 = step runs), or an empty tensor for "all steps valid". A masked step
//                         leaves (h, c) unchanged and emits the previous output in processing order (carry,
//                         0 before the first step) or 0 (zero).
//   rec_mask[d] (G, B, H_d) with G in {1, 4}: multiplicative recurrent dropout mask applied to h_{t-1}
//                         (G = 4: one per gate, i, f, g, o), or an empty tensor for none.
//   bias[d]   (4H_d)      added to direction d's pre-activations every step, or an empty tensor when xp
//                         already holds the bias (the caller then saves nothing: torch.addmm would spend
//                         a full pass over (T*B, S) copying the broadcast bias into its output).
//
// cfg.bf16 (a bf16 layer, lstm_bridge.engine.precision): every tensor above is still float32; the per-step
// GEMM rounds h (or dZ in backward) and W_hh to bfloat16 (W_hh once, when packing) and accumulates in
// float32 (vdpbf16ps on AVX512_BF16, an exact float emulation elsewhere). matmul_nt_bf16 is the same GEMM
// for the input projection. Gates, cell and hidden state stay float32. Its tanh and sigmoid are a rational
// approximation (|error| < 3e-7, far below bf16's 2^-9; lstm.cpp rational_tanh), not the float32 layer's.
//
// Step s of direction d runs at time t = s, or T-1-s when reverse[d] (directions are independent):
//   z = xp[t] + (h * m) @ W_hh^T [+ bias];  i,f,o = gate(z_i,z_f,z_o); g = cand(z_g)
//   c' = f*c + i*g;  h' = o * cell(c');  (h, c, y) = valid ? (h', c', h') : (h, c, carry ? y_prev : 0)
//
// forward  -> [outs[d] (T,B,H_d)], [h_n[d] (B,H_d)], [c_n[d] (B,H_d)], [c_prev[d] (T,B,H_d)],
//             [h_prev[d] (T,B,H_d)]   (c_prev/h_prev: state *entering* step t; empty unless cfg.save)
//             cfg.bf16: outs[d] in bfloat16 (rounded once, as the layer returns them); the rest float32.
// backward -> [dZ (T,B,S) (gradient w.r.t. xp's pre-activations, 0 on masked steps), db (S) (the bias
//             gradients: dZ summed over each row's steps as they are formed, then over the rows in order)],
//             [dh0[d]], [dc0[d]]. The caller forms dW_hh = dZ_d^T (h_prev * m) (per gate q under G = 4 masks;
//             lstm.cpp gate_weight_grad) and the input projection's gradients with large GEMMs after the loop.
//             cfg.bf16: dZ in bfloat16 (rounded once: what those GEMMs and the step GEMM read), db float32
//             (summed from the float32 dz rows).
//
// Threads: at::parallel_for over (direction, block of rows) items when the layer is big enough; each
// item runs its rows through every step on one thread (rows of an LSTM never interact).
//
// Activation ids (lstm_bridge.activations.Activation.native_id): see enum Act below.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace lstm_bridge {

enum Act : int64_t {
  kSigmoid = 0,
  kTanh = 1,
  kHardSigmoidKeras2 = 2,  // clamp(x * 0.2 + 0.5, 0, 1)
  kHardSigmoidKeras3 = 3,  // clamp(x + 3, 0, 6) / 6
  kRelu = 4,
  kLinear = 5,
  kSoftsign = 6,           // x / (1 + |x|)
  kMsCpuSigmoid = 7,       // MindSpore's CPU float32 Sigmoid (polynomial exp), bit for bit
  kMsCpuTanh = 8,          // MindSpore's CPU float32 Tanh (Pade 7/6, cut at +-5), bit for bit
  kNumActs = 9,
};

// The per-step recurrent GEMM (LayerConfig::gemm); all give the same results within float rounding.
enum GemmPath : int64_t {
  kGemmKernel = 0,  // register-blocked at::vec micro-kernel over W_hh packed once per call (default)
  kGemmMkl = 1,     // MKL packed-GEMM API (float32; builds that link MKL only)
  kGemmAten = 2,    // at::mm_out per step (portable reference)
};

// Everything about a layer that is not a tensor; built once per call on the Python side.
struct LayerConfig {
  std::vector<int64_t> offsets;  // column offset of direction d's 4H_d block in xp
  std::vector<bool> reverse;     // direction d runs t = T-1 .. 0
  int64_t gate_act = kSigmoid;   // i, f, o
  int64_t cand_act = kTanh;      // g
  int64_t cell_act = kTanh;      // applied to c_t
  bool carry = true;             // masked-output rule: true = previous output, false = zeros
  bool save = false;             // keep c_prev / h_prev for backward
  int64_t gemm = kGemmKernel;    // per-step GEMM path
  bool bf16 = false;             // float32 layer whose per-step GEMMs round both operands to bfloat16
                                 // (float32 accumulation, state and gates); overrides gemm
};

std::vector<std::vector<at::Tensor>> lstm_forward(const LayerConfig& cfg, at::Tensor xp,
                                                  const std::vector<at::Tensor>& w_hh,
                                                  const std::vector<at::Tensor>& h0,
                                                  const std::vector<at::Tensor>& c0,
                                                  const at::Tensor& valid,
                                                  const std::vector<at::Tensor>& rec_mask,
                                                  const std::vector<at::Tensor>& bias);

std::vector<std::vector<at::Tensor>> lstm_backward(const LayerConfig& cfg, const at::Tensor& gates,
                                                   const std::vector<at::Tensor>& grad_out,
                                                   const std::vector<at::Tensor>& grad_hn,
                                                   const std::vector<at::Tensor>& grad_cn,
                                                   const std::vector<at::Tensor>& c_prev,
                                                   const std::vector<at::Tensor>& w_hh,
                                                   const at::Tensor& valid,
                                                   const std::vector<at::Tensor>& rec_mask);

}  // namespace lstm_bridge
