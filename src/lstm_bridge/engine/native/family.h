// lstm-bridge native CPU kernel: the GRU (both reset_after forms) and the simple RNN, one (bi)directional
// layer, forward and backward. Same shape of work as the LSTM kernel (lstm.h): the caller does the input
// projection of every step and direction in one GEMM; per step the kernel runs the recurrent GEMM(s) with
// the packed micro-kernel (kernel_common.h) and one fused pointwise pass per row.
//
// Shape contract (time-major; T steps, B rows, D directions, H_d hidden units, G = 3 (GRU) or 1 (RNN),
// S = sum_d G*H_d):
//
//   xp        (T, B, S)  float32|float64, contiguous: direction d's x W_ih^T in columns
//                        [offsets[d], offsets[d] + G*H_d), gate order r, z, n. forward() OVERWRITES it:
//                        afterwards it holds r, z, n after activation (GRU) or the new state before
//                        masking (RNN) for every step, which is what backward() reads.
//   w_hh[d]   (G*H_d, H_d) recurrent weights, canonical layout, any strides (packed once per call).
//   h0[d]     (B, H_d).
//   valid     (T, B) uint8 (1 = the step runs) or empty: a masked step keeps h and emits the previous
//                        output in processing order (carry, 0 before the first valid step) or 0 (zero).
//   rec_mask[d] (M, B, H_d), M in {1, 3 (GRU)}: recurrent dropout of h_{t-1} inside the products only
//                        (per gate r, z, n when M = 3), or empty.
//   bias_x[d] (G*H_d)    added to xp's rows before the step (the torch path's `xp + b` order), or empty.
//   bias_h[d] (G*H_d)    added to the recurrent product h W_hh^T before it meets xp (MindSpore's order;
//                        the GRU's b_hn in the reset_after form), or empty.
//
// One step (σ = gate_act, φ = cand_act, hm_q = h ⊙ m_q, blend(n, h, z) = n + z (h - n) as torch.lerp
// rounds it, or literally when ms_order):
//   RNN:           h' = φ(xp_t + hm W^T [+ bias_h])              (no bias_h: accumulated straight into xp)
//   kGruAfter:     gh = hm W_hh^T + bias_h;  r, z = σ(xp_rz + gh_rz);  n = φ(xp_n + r ⊙ gh_n)
//   kGruBefore:    r, z = σ(xp_rz + hm W_rz^T);  n = φ(xp_n + (r ⊙ hm_n) W_n^T)
//   GRU:           h' = blend(n, h, z)
//
// forward  -> [outs[d] (T,B,H)], [h_n[d] (B,H)], [h_prev[d] (T,B,H)], [aux[d] (T,B,H)]
//             h_prev: the state entering step t; aux: gh_n (kGruAfter) or r ⊙ hm_n (kGruBefore); both
//             only when cfg.save (aux only for the GRU).
// backward -> [dZ (T,B,S)]: gradient w.r.t. xp's pre-activations (0 on masked steps), the input side;
//             [dh0[d]]; [d_aux[d] (T,B,H)] (kGruAfter only: gradient w.r.t. gh_n, = dZ_n ⊙ r).
//             The caller forms dW_hh from dZ / d_aux and h_prev / aux, and the projection's gradients,
//             as large GEMMs after the loop.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/extension.h>

namespace lstm_bridge {

enum FamilyForm : int64_t {
  kRnn = 0,
  kGruAfter = 1,   // reset_after=True: PyTorch, MindSpore, Keras TF2's default
  kGruBefore = 2,  // reset_after=False: Keras <= 2.3 / TF 1.x, ONNX linear_before_reset=0
};

struct FamilyConfig {
  int64_t form = kGruAfter;
  std::vector<int64_t> offsets;  // column offset of direction d's G*H_d block in xp
  std::vector<bool> reverse;     // direction d runs t = T-1 .. 0
  int64_t gate_act = 0;          // r, z (enum Act in lstm.h)
  int64_t cand_act = 1;          // n, or the RNN's activation
  bool carry = true;             // masked-output rule: true = previous output, false = zeros
  bool ms_order = false;         // GRU: h' = n + z * (h - n) literally (MindSpore) instead of torch.lerp's rounding
  bool save = false;             // keep h_prev / aux for backward
};

std::vector<std::vector<at::Tensor>> family_forward(const FamilyConfig& cfg, at::Tensor xp,
                                                    const std::vector<at::Tensor>& w_hh,
                                                    const std::vector<at::Tensor>& h0, const at::Tensor& valid,
                                                    const std::vector<at::Tensor>& rec_mask,
                                                    const std::vector<at::Tensor>& bias_x,
                                                    const std::vector<at::Tensor>& bias_h);

std::vector<std::vector<at::Tensor>> family_backward(const FamilyConfig& cfg, const at::Tensor& gates,
                                                     const std::vector<at::Tensor>& grad_out,
                                                     const std::vector<at::Tensor>& grad_hn,
                                                     const std::vector<at::Tensor>& h_prev,
                                                     const std::vector<at::Tensor>& aux,
                                                     const std::vector<at::Tensor>& w_hh, const at::Tensor& valid,
                                                     const std::vector<at::Tensor>& rec_mask);

// Adds FamilyConfig, family_forward and family_backward to the extension module (called by lstm.cpp's
// PYBIND11_MODULE: one extension, one build).
void register_family(pybind11::module_& m);

}  // namespace lstm_bridge
