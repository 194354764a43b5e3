// lstm-bridge native CPU kernel: GRU and simple-RNN recurrences, forward and backward. Shape contract in
// family.h; the activations, the packed micro-kernel GEMM and the work split are shared with the LSTM
// (kernel_common.h).
//
// Work items are (direction, block of batch rows), each on one thread through all T steps. Per step:
// the recurrent product(s) through the micro-kernel over W_hh packed once per call (one GEMM for the RNN
// and the reset_after GRU, two for reset_after=False, whose second product needs r; one per gate under
// per-gate recurrent dropout), then one pointwise pass per row that overwrites xp with what backward
// reads. Nothing is allocated inside the time loop.
#include "family.h"

#include "kernel_common.h"
#include "buffer_pool.h"

namespace lstm_bridge {
namespace {

// Per-direction data shared by the items of that direction (each item touches only its rows).
template <typename T>
struct FamDir {
  int64_t H = 0, off = 0, M = 0, GH = 0;  // M: recurrent masks (0, 1, 3); GH: gate columns (3H or H)
  bool reverse = false;
  const T* mask = nullptr;      // (M, B, H)
  const T* bias_x = nullptr;    // (GH) or null
  const T* bias_h = nullptr;    // (GH) or null
  at::Tensor s_h, r_h;          // forward: h0 in, h_n out; backward: grad h_n in, dh0 out
  at::Tensor out, hprev, aux;   // forward outputs (T, B, H)
  const T* gout = nullptr;      // backward: grad of out (T, B, H)
  const T* hprev_in = nullptr;  // backward: saved h_prev (T, B, H)
  const T* aux_in = nullptr;    // backward: saved aux (T, B, H)
  at::Tensor daux;              // backward (kGruAfter): d gh_n (T, B, H)
  std::vector<RecGemm<T>> fwd;  // packed pieces, see pieces()
  std::vector<RecGemm<T>> bwd;
};

// Row ranges of W_hh packed as separate GEMM pieces (first row, rows), in the order the step uses them.
// forward, kGruAfter without per-gate masks: one (3H, H) piece into a (nb, 3H) scratch; with them, r, z, n.
// kGruBefore: [r, z or rz], then n (it needs r first). backward, GRU: [r, z or rz], then n.
std::vector<std::pair<int64_t, int64_t>> pieces(int64_t form, int64_t H, int64_t M, bool forward) {
  if (form == kRnn) return {{0, H}};
  if (M == 3) return {{0, H}, {H, H}, {2 * H, H}};
  if (form == kGruAfter && forward) return {{0, 3 * H}};
  return {{0, 2 * H}, {2 * H, H}};
}

// blend(n, h, z) = n + z (h - n): torch.lerp(n, h, z)'s rounding (its CPU kernel: one FMA from whichever
// end is nearer), or MindSpore's literal n + z * (h - n).
template <typename T>
inline void blend(int64_t n, const T* __restrict nv, const T* __restrict h, const T* __restrict z,
                  T* __restrict out, bool literal) {
  if (literal) {
    for (int64_t j = 0; j < n; ++j) out[j] = nv[j] + z[j] * (h[j] - nv[j]);
    return;
  }
  for (int64_t j = 0; j < n; ++j) {
    const T diff = h[j] - nv[j];
    const bool small = std::abs(z[j]) < T(0.5);
    out[j] = small ? std::fma(z[j], diff, nv[j]) : std::fma(z[j] - T(1), diff, h[j]);
  }
}

// The GEMM input for gate piece q: h (no masks), h ⊙ m (one mask), h ⊙ m_q (per gate).
template <typename T>
inline const T* masked_input(const FamDir<T>& r, const T* h, const T* hm, int64_t nb, int64_t q) {
  if (r.M == 0) return h;
  if (r.M == 1) return hm;
  return hm + q * nb * r.H;
}

template <typename T>
inline void mask_rows(const FamDir<T>& r, int64_t B, int64_t nb, int64_t i, int64_t b, const T* hb, T* hm) {
  const int64_t H = r.H;
  for (int64_t q = 0; q < r.M; ++q) {
    const T* mb = r.mask + (q * B + b) * H;
    T* dst = hm + (q * nb + i) * H;
    for (int64_t j = 0; j < H; ++j) dst[j] = hb[j] * mb[j];
  }
}

template <typename T>
void forward_rows(const FamilyConfig& cfg, T* xp, int64_t Tn, int64_t B, int64_t S, const uint8_t* vptr,
                  FamDir<T>& r, int64_t b0, int64_t b1) {
  const int64_t nb = b1 - b0, H = r.H, GH = r.GH, off = r.off, form = cfg.form;
  if (nb <= 0) return;
  const auto opts = r.out.options();
  const bool use_yprev = vptr != nullptr && cfg.carry;
  const bool rnn_fused = form == kRnn && r.bias_h == nullptr;  // h W^T accumulated straight into xp
  at::Tensor h_t = r.s_h.narrow(0, b0, nb).clone(at::MemoryFormat::Contiguous);
  at::Tensor hm_t = r.M > 0 ? at::empty({r.M, nb, H}, opts) : at::Tensor();
  // kGruAfter / unfused RNN: the recurrent product (nb, GH); kGruBefore: r ⊙ hm_n (nb, H)
  at::Tensor scratch_t = rnn_fused ? at::Tensor() : at::empty({nb, form == kGruBefore ? H : GH}, opts);
  at::Tensor hn_t = at::empty({nb, H}, opts);
  T* h = h_t.data_ptr<T>();
  T* hm = r.M > 0 ? hm_t.data_ptr<T>() : nullptr;
  T* sc = rnn_fused ? nullptr : scratch_t.data_ptr<T>();
  T* hn_all = hn_t.data_ptr<T>();
  T* out_all = r.out.template data_ptr<T>();
  T* hprev_all = cfg.save ? r.hprev.template data_ptr<T>() : nullptr;
  T* aux_all = cfg.save && form != kRnn ? r.aux.template data_ptr<T>() : nullptr;
  for (int64_t i = 0; i < nb; ++i) mask_rows<T>(r, B, nb, i, b0 + i, h + i * H, hm);
  const T* bx = r.bias_x;
  const T* bh = r.bias_h;
  for (int64_t s = 0; s < Tn; ++s) {
    const int64_t t = r.reverse ? Tn - 1 - s : s;
    T* zt = xp + (t * B + b0) * S + off;
    for (int64_t i = 0; i < nb; ++i) {
      T* z = zt + i * S;
      if (bx != nullptr) {
        for (int64_t j = 0; j < GH; ++j) z[j] = z[j] + bx[j];
      }
      if (hprev_all != nullptr) std::memcpy(hprev_all + (t * B + b0 + i) * H, h + i * H, sizeof(T) * H);
    }
    if (form == kRnn) {
      if (rnn_fused) {
        kernel_gemm<T>(r.fwd[0], 0, nb, masked_input(r, h, hm, nb, 0), H, true, zt, S);
      } else {
        kernel_gemm<T>(r.fwd[0], 0, nb, masked_input(r, h, hm, nb, 0), H, false, sc, H);
        for (int64_t i = 0; i < nb; ++i) {
          T* z = zt + i * S;
          const T* g = sc + i * H;
          for (int64_t j = 0; j < H; ++j) z[j] = z[j] + (g[j] + bh[j]);  // gi + (h W^T + b_hh)
        }
      }
      for (int64_t i = 0; i < nb; ++i) apply_act<T>(cfg.cand_act, zt + i * S, zt + i * S, H);
    } else if (form == kGruAfter) {
      if (r.M == 3) {
        for (int64_t q = 0; q < 3; ++q) kernel_gemm<T>(r.fwd[q], 0, nb, hm + q * nb * H, H, false, sc + q * H, GH);
      } else {
        kernel_gemm<T>(r.fwd[0], 0, nb, masked_input(r, h, hm, nb, 0), H, false, sc, GH);
      }
      for (int64_t i = 0; i < nb; ++i) {
        T* z = zt + i * S;
        T* g = sc + i * GH;
        if (bh != nullptr) {
          for (int64_t j = 0; j < GH; ++j) g[j] = g[j] + bh[j];
        }
        for (int64_t j = 0; j < 2 * H; ++j) z[j] = z[j] + g[j];
        apply_act<T>(cfg.gate_act, z, z, 2 * H);
        if (aux_all != nullptr) std::memcpy(aux_all + (t * B + b0 + i) * H, g + 2 * H, sizeof(T) * H);
        T* zn = z + 2 * H;
        const T* gn = g + 2 * H;
        for (int64_t j = 0; j < H; ++j) zn[j] = zn[j] + z[j] * gn[j];
        apply_act<T>(cfg.cand_act, zn, zn, H);
      }
    } else {  // kGruBefore
      if (r.M == 3) {
        kernel_gemm<T>(r.fwd[0], 0, nb, hm, H, true, zt, S);
        kernel_gemm<T>(r.fwd[1], 0, nb, hm + nb * H, H, true, zt + H, S);
      } else {
        kernel_gemm<T>(r.fwd[0], 0, nb, masked_input(r, h, hm, nb, 0), H, true, zt, S);
      }
      const T* hn_in = masked_input(r, h, hm, nb, 2);  // h ⊙ m_n
      for (int64_t i = 0; i < nb; ++i) {
        T* z = zt + i * S;
        apply_act<T>(cfg.gate_act, z, z, 2 * H);
        const T* a = hn_in + i * H;
        T* rh = sc + i * H;
        for (int64_t j = 0; j < H; ++j) rh[j] = z[j] * a[j];
        if (aux_all != nullptr) std::memcpy(aux_all + (t * B + b0 + i) * H, rh, sizeof(T) * H);
      }
      kernel_gemm<T>(r.fwd.back(), 0, nb, sc, H, true, zt + 2 * H, S);
      for (int64_t i = 0; i < nb; ++i) apply_act<T>(cfg.cand_act, zt + i * S + 2 * H, zt + i * S + 2 * H, H);
    }
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t b = b0 + i;
      T* z = zt + i * S;
      T* hb = h + i * H;
      const T* hnew = z;  // RNN: the activated row
      if (form != kRnn) {
        T* hn = hn_all + i * H;
        blend<T>(H, z + 2 * H, hb, z + H, hn, cfg.ms_order);
        hnew = hn;
      }
      T* y = out_all + (t * B + b) * H;
      const bool keep = vptr == nullptr || vptr[t * B + b] != 0;
      if (keep) {
        std::memcpy(hb, hnew, sizeof(T) * H);
        std::memcpy(y, hnew, sizeof(T) * H);
        mask_rows<T>(r, B, nb, i, b, hb, hm);
      } else if (use_yprev && s > 0) {  // the carried output: the previous step's, already in out
        std::memcpy(y, out_all + ((r.reverse ? t + 1 : t - 1) * B + b) * H, sizeof(T) * H);
      } else {
        std::fill(y, y + H, T(0));
      }
    }
  }
  r.r_h.narrow(0, b0, nb).copy_(h_t);
}

// dh of the state leaving the step just processed: the products' gradients (P pieces, each through its
// mask) plus the direct paths (dpass).
template <typename T>
inline void combine_dh(const FamDir<T>& r, int64_t P, int64_t B, int64_t nb, int64_t i, int64_t b, const T* dhg,
                       const T* dpass, T* dst) {
  const int64_t H = r.H;
  const T* pb = dpass + i * H;
  if (r.M == 0) {
    const T* gb = dhg + i * H;
    for (int64_t j = 0; j < H; ++j) dst[j] = gb[j] + pb[j];
  } else if (r.M == 1) {
    const T* gb = dhg + i * H;
    const T* mb = r.mask + b * H;
    for (int64_t j = 0; j < H; ++j) dst[j] = gb[j] * mb[j] + pb[j];
  } else {
    for (int64_t j = 0; j < H; ++j) dst[j] = pb[j];
    for (int64_t q = 0; q < P; ++q) {
      const T* gq = dhg + (q * nb + i) * H;
      const T* mq = r.mask + (q * B + b) * H;
      for (int64_t j = 0; j < H; ++j) dst[j] = dst[j] + gq[j] * mq[j];
    }
  }
}

template <typename T>
void backward_rows(const FamilyConfig& cfg, const T* gates, T* dz_ptr, int64_t Tn, int64_t B, int64_t S,
                   const uint8_t* vptr, FamDir<T>& r, int64_t b0, int64_t b1) {
  const int64_t nb = b1 - b0, H = r.H, GH = r.GH, off = r.off, form = cfg.form;
  if (nb <= 0) return;
  const auto opts = r.s_h.options();
  const bool use_dyc = vptr != nullptr && cfg.carry;
  // pieces whose product gradients carry their own mask (per-gate masks); otherwise one summed buffer
  const int64_t P = r.M == 3 ? (form == kGruAfter ? 3 : (form == kGruBefore ? 2 : 1)) : 1;
  at::Tensor dh_t = r.s_h.narrow(0, b0, nb).clone(at::MemoryFormat::Contiguous);
  at::Tensor dpass_t = at::zeros({nb, H}, opts);
  at::Tensor dyc_t = use_dyc ? at::zeros({nb, H}, opts) : at::Tensor();
  at::Tensor dhg_t = at::zeros({P, nb, H}, opts);
  at::Tensor drh_t = form == kGruBefore ? at::empty({nb, H}, opts) : at::Tensor();
  T* dh_all = dh_t.data_ptr<T>();
  T* dpass_all = dpass_t.data_ptr<T>();
  T* dyc_all = use_dyc ? dyc_t.data_ptr<T>() : nullptr;
  T* dhg = dhg_t.data_ptr<T>();
  T* drh = form == kGruBefore ? drh_t.data_ptr<T>() : nullptr;
  T* daux_all = form == kGruAfter ? r.daux.template data_ptr<T>() : nullptr;
  for (int64_t s = Tn - 1; s >= 0; --s) {
    const int64_t t = r.reverse ? Tn - 1 - s : s;
    const bool first = s == Tn - 1;
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t b = b0 + i;
      T* dh = dh_all + i * H;
      if (!first) combine_dh<T>(r, P, B, nb, i, b, dhg, dpass_all, dh);
      T* dpass = dpass_all + i * H;
      T* dyc = dyc_all != nullptr ? dyc_all + i * H : nullptr;
      const T* gy = r.gout + (t * B + b) * H;
      T* dz = dz_ptr + (t * B + b) * S + off;
      T* daux = daux_all != nullptr ? daux_all + (t * B + b) * H : nullptr;
      const bool keep = vptr == nullptr || vptr[t * B + b] != 0;
      if (!keep) {  // the state passes through; the output gradient goes to the carried output (if any)
        std::fill(dz, dz + GH, T(0));
        if (daux != nullptr) std::fill(daux, daux + H, T(0));
        std::memcpy(dpass, dh, sizeof(T) * H);
        if (dyc != nullptr) {
          for (int64_t j = 0; j < H; ++j) dyc[j] = dyc[j] + gy[j];
        }
        continue;
      }
      // g: the gradient of the new state (output + next step + carried outputs), kept in dh
      for (int64_t j = 0; j < H; ++j) dh[j] = gy[j] + dh[j];
      if (dyc != nullptr) {
        for (int64_t j = 0; j < H; ++j) dh[j] = dh[j] + dyc[j];
        std::fill(dyc, dyc + H, T(0));
      }
      const T* gz = gates + (t * B + b) * S + off;
      if (form == kRnn) {
        std::memcpy(dz, dh, sizeof(T) * H);
        mul_act_grad<T>(cfg.cand_act, dz, gz, H);
        std::fill(dpass, dpass + H, T(0));
        continue;
      }
      const T* gr = gz;
      const T* gzz = gz + H;
      const T* gn = gz + 2 * H;
      const T* hp = r.hprev_in + (t * B + b) * H;
      T* dzr = dz;
      T* dzz = dz + H;
      T* dzn = dz + 2 * H;
      for (int64_t j = 0; j < H; ++j) {
        dzn[j] = dh[j] * (T(1) - gzz[j]);
        dzz[j] = dh[j] * (hp[j] - gn[j]);
        dpass[j] = dh[j] * gzz[j];
      }
      mul_act_grad<T>(cfg.cand_act, dzn, gn, H);
      mul_act_grad<T>(cfg.gate_act, dzz, gzz, H);
      if (form == kGruAfter) {
        const T* ghn = r.aux_in + (t * B + b) * H;
        for (int64_t j = 0; j < H; ++j) {
          dzr[j] = dzn[j] * ghn[j];
          daux[j] = dzn[j] * gr[j];
        }
        mul_act_grad<T>(cfg.gate_act, dzr, gr, H);
      }
    }
    T* dzt = dz_ptr + (t * B + b0) * S + off;
    if (form == kRnn) {
      kernel_gemm<T>(r.bwd[0], 0, nb, dzt, S, false, dhg, H);
    } else if (form == kGruAfter) {
      T* daux_t = daux_all + (t * B + b0) * H;
      if (r.M == 3) {
        for (int64_t q = 0; q < 2; ++q) kernel_gemm<T>(r.bwd[q], 0, nb, dzt + q * H, S, false, dhg + q * nb * H, H);
        kernel_gemm<T>(r.bwd[2], 0, nb, daux_t, H, false, dhg + 2 * nb * H, H);
      } else {
        kernel_gemm<T>(r.bwd[0], 0, nb, dzt, S, false, dhg, H);
        kernel_gemm<T>(r.bwd[1], 0, nb, daux_t, H, true, dhg, H);
      }
    } else {  // kGruBefore: d(r ⊙ hm_n) first, then r's gradient, then the r, z products
      kernel_gemm<T>(r.bwd.back(), 0, nb, dzt + 2 * H, S, false, drh, H);
      for (int64_t i = 0; i < nb; ++i) {
        const int64_t b = b0 + i;
        if (vptr != nullptr && vptr[t * B + b] == 0) continue;
        const T* gr = gates + (t * B + b) * S + off;
        const T* hp = r.hprev_in + (t * B + b) * H;
        const T* d = drh + i * H;
        T* dzr = dz_ptr + (t * B + b) * S + off;
        T* dpass = dpass_all + i * H;
        if (r.M == 0) {
          for (int64_t j = 0; j < H; ++j) {
            dzr[j] = d[j] * hp[j];
            dpass[j] = dpass[j] + d[j] * gr[j];
          }
        } else {
          const T* mn = r.mask + ((r.M == 3 ? 2 : 0) * B + b) * H;
          for (int64_t j = 0; j < H; ++j) {
            dzr[j] = d[j] * (hp[j] * mn[j]);
            dpass[j] = dpass[j] + (d[j] * gr[j]) * mn[j];
          }
        }
        mul_act_grad<T>(cfg.gate_act, dzr, gr, H);
      }
      if (r.M == 3) {
        for (int64_t q = 0; q < 2; ++q) kernel_gemm<T>(r.bwd[q], 0, nb, dzt + q * H, S, false, dhg + q * nb * H, H);
      } else {
        kernel_gemm<T>(r.bwd[0], 0, nb, dzt, S, false, dhg, H);
      }
    }
  }
  for (int64_t i = 0; i < nb; ++i) combine_dh<T>(r, P, B, nb, i, b0 + i, dhg, dpass_all, dh_all + i * H);
  r.r_h.narrow(0, b0, nb).copy_(dh_t);
}

int64_t gate_count(int64_t form) { return form == kRnn ? 1 : 3; }

void check_family(const FamilyConfig& cfg, const at::Tensor& xp, const std::vector<at::Tensor>& w_hh,
                  const at::Tensor& valid, const std::vector<at::Tensor>& rec_mask) {
  const size_t D = w_hh.size();
  TORCH_CHECK(cfg.form == kRnn || cfg.form == kGruAfter || cfg.form == kGruBefore,
              "lstm-bridge native: family form must be 0 (RNN), 1 (GRU reset_after) or 2 (GRU reset_before); "
              "received ",
              cfg.form);
  TORCH_CHECK(cfg.gate_act >= 0 && cfg.gate_act < kNumActs && cfg.cand_act >= 0 && cfg.cand_act < kNumActs,
              "lstm-bridge native: activation ids must be in 0..", kNumActs - 1, "; received ", cfg.gate_act,
              " and ", cfg.cand_act);
  TORCH_CHECK(xp.dim() == 3 && xp.is_contiguous() && !xp.is_cuda() &&
                  (xp.scalar_type() == at::kFloat || xp.scalar_type() == at::kDouble),
              "lstm-bridge native: xp must be a contiguous float32/float64 CPU (T, B, S) tensor; received ",
              xp.sizes(), " ", xp.scalar_type(), " contiguous=", xp.is_contiguous());
  TORCH_CHECK(cfg.offsets.size() == D && cfg.reverse.size() == D && rec_mask.size() == D,
              "lstm-bridge native: ", D, " directions but ", cfg.offsets.size(), " offsets, ", cfg.reverse.size(),
              " reverse flags and ", rec_mask.size(), " recurrent masks");
  const int64_t G = gate_count(cfg.form);
  const int64_t T = xp.size(0), B = xp.size(1);
  int64_t S = 0;
  for (size_t d = 0; d < D; ++d) {
    const int64_t H = w_hh[d].size(1);
    TORCH_CHECK(w_hh[d].dim() == 2 && w_hh[d].size(0) == G * H && w_hh[d].scalar_type() == xp.scalar_type() &&
                    !w_hh[d].is_cuda(),
                "lstm-bridge native: w_hh[", d, "] must be a CPU (", G, "H, H) tensor of dtype ", xp.scalar_type(),
                "; received ", w_hh[d].sizes(), " ", w_hh[d].scalar_type());
    TORCH_CHECK(cfg.offsets[d] >= 0 && cfg.offsets[d] + G * H <= xp.size(2), "lstm-bridge native: direction ", d,
                " columns [", cfg.offsets[d], ", ", cfg.offsets[d] + G * H, ") exceed xp's ", xp.size(2));
    S += G * H;
    const at::Tensor& m = rec_mask[d];
    if (m.numel() > 0) {
      TORCH_CHECK(m.dim() == 3 && (m.size(0) == 1 || (m.size(0) == 3 && G == 3)) && m.size(1) == B &&
                      m.size(2) == H && m.is_contiguous() && m.scalar_type() == xp.scalar_type(),
                  "lstm-bridge native: rec_mask[", d, "] must be contiguous (M in {1", (G == 3 ? ", 3" : ""), "}, ",
                  B, ", ", H, ") of dtype ", xp.scalar_type(), "; received ", m.sizes(), " ", m.scalar_type());
    }
  }
  TORCH_CHECK(S == xp.size(2), "lstm-bridge native: xp has ", xp.size(2), " columns, directions need ", S);
  if (valid.numel() > 0) {
    TORCH_CHECK(valid.dim() == 2 && valid.size(0) == T && valid.size(1) == B && valid.scalar_type() == at::kByte &&
                    valid.is_contiguous(),
                "lstm-bridge native: valid must be a contiguous uint8 (", T, ", ", B, ") tensor; received ",
                valid.sizes(), " ", valid.scalar_type());
  }
}

// Optional (GH) vector argument: contiguous in the layer's dtype, or null when empty.
template <typename T>
const T* optional_vector(const at::Tensor& v, int64_t n, at::ScalarType dtype, const char* what, size_t d,
                         at::Tensor& keep) {
  if (v.numel() == 0) return nullptr;
  TORCH_CHECK(v.dim() == 1 && v.size(0) == n && v.scalar_type() == dtype && !v.is_cuda(), "lstm-bridge native: ",
              what, "[", d, "] must be a CPU (", n, ") tensor of dtype ", dtype, " or empty; received ", v.sizes(),
              " ", v.scalar_type());
  keep = v.contiguous();
  return keep.data_ptr<T>();
}

template <typename T>
std::vector<FamDir<T>> family_dirs(const FamilyConfig& cfg, const std::vector<at::Tensor>& w_hh,
                                   const std::vector<at::Tensor>& rec_mask, const at::TensorOptions& opts, int64_t B,
                                   const std::vector<at::Tensor>& s_h, const char* what, bool forward) {
  std::vector<FamDir<T>> dirs(w_hh.size());
  for (size_t d = 0; d < dirs.size(); ++d) {
    FamDir<T>& r = dirs[d];
    r.H = w_hh[d].size(1);
    r.GH = gate_count(cfg.form) * r.H;
    r.off = cfg.offsets[d];
    r.reverse = cfg.reverse[d];
    r.M = rec_mask[d].numel() > 0 ? rec_mask[d].size(0) : 0;
    r.mask = r.M > 0 ? rec_mask[d].data_ptr<T>() : nullptr;
    TORCH_CHECK(s_h[d].sizes() == at::IntArrayRef({B, r.H}), "lstm-bridge native: ", what, "[", d, "] must be (",
                B, ", ", r.H, "); received ", s_h[d].sizes());
    r.s_h = s_h[d].to(opts);
    r.r_h = at::empty({B, r.H}, opts);
    for (const auto& [row0, rows] : pieces(cfg.form, r.H, r.M, forward)) {
      std::vector<RecGemm<T>>& dst = forward ? r.fwd : r.bwd;
      dst.push_back(pack_kernel_weights<T>(w_hh[d].narrow(0, row0, rows), 0, forward));
    }
  }
  return dirs;
}

template <typename T>
int64_t family_work(const std::vector<FamDir<T>>& dirs, int64_t Tn, int64_t B) {
  int64_t work = 0;
  for (const auto& r : dirs) work += Tn * B * r.GH * r.H;
  return work;
}

}  // namespace

std::vector<std::vector<at::Tensor>> family_forward(const FamilyConfig& cfg, at::Tensor xp,
                                                    const std::vector<at::Tensor>& w_hh,
                                                    const std::vector<at::Tensor>& h0, const at::Tensor& valid,
                                                    const std::vector<at::Tensor>& rec_mask,
                                                    const std::vector<at::Tensor>& bias_x,
                                                    const std::vector<at::Tensor>& bias_h) {
  check_family(cfg, xp, w_hh, valid, rec_mask);
  const size_t D = w_hh.size();
  TORCH_CHECK(h0.size() == D && bias_x.size() == D && bias_h.size() == D,
              "lstm-bridge native: h0/bias_x/bias_h need one tensor per direction (", D, "); received ", h0.size(),
              ", ", bias_x.size(), " and ", bias_h.size());
  const int64_t Tn = xp.size(0), B = xp.size(1), S = xp.size(2);
  const uint8_t* vptr = valid.numel() > 0 ? valid.data_ptr<uint8_t>() : nullptr;
  std::vector<std::vector<at::Tensor>> result(4);
  std::vector<at::Tensor> keep(2 * D);
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "lstm_bridge_family_forward", [&] {
    auto dirs = family_dirs<scalar_t>(cfg, w_hh, rec_mask, xp.options(), B, h0, "h0", true);
    for (size_t d = 0; d < D; ++d) {
      FamDir<scalar_t>& r = dirs[d];
      r.bias_x = optional_vector<scalar_t>(bias_x[d], r.GH, xp.scalar_type(), "bias_x", d, keep[2 * d]);
      r.bias_h = optional_vector<scalar_t>(bias_h[d], r.GH, xp.scalar_type(), "bias_h", d, keep[2 * d + 1]);
      TORCH_CHECK(cfg.form != kGruBefore || r.bias_h == nullptr,
                  "lstm-bridge native: the reset_after=False GRU takes its whole bias in bias_x; received bias_h[", d,
                  "]");
      r.out = pooled_empty({Tn, B, r.H}, xp.options());
      if (cfg.save) {
        r.hprev = pooled_empty({Tn, B, r.H}, xp.options());
        if (cfg.form != kRnn) r.aux = pooled_empty({Tn, B, r.H}, xp.options());
      }
    }
    scalar_t* xp_ptr = xp.data_ptr<scalar_t>();
    for_each_item(static_cast<int64_t>(D), B, family_work(dirs, Tn, B), [&](int64_t d, int64_t b0, int64_t b1) {
      forward_rows<scalar_t>(cfg, xp_ptr, Tn, B, S, vptr, dirs[d], b0, b1);
    });
    for (auto& r : dirs) {
      result[0].push_back(r.out);
      result[1].push_back(r.r_h);
      if (cfg.save) {
        result[2].push_back(r.hprev);
        if (cfg.form != kRnn) result[3].push_back(r.aux);
      }
    }
  });
  return result;
}

std::vector<std::vector<at::Tensor>> family_backward(const FamilyConfig& cfg, const at::Tensor& gates,
                                                     const std::vector<at::Tensor>& grad_out,
                                                     const std::vector<at::Tensor>& grad_hn,
                                                     const std::vector<at::Tensor>& h_prev,
                                                     const std::vector<at::Tensor>& aux,
                                                     const std::vector<at::Tensor>& w_hh, const at::Tensor& valid,
                                                     const std::vector<at::Tensor>& rec_mask) {
  check_family(cfg, gates, w_hh, valid, rec_mask);
  const size_t D = w_hh.size();
  const bool gru = cfg.form != kRnn;
  TORCH_CHECK(grad_out.size() == D && grad_hn.size() == D && h_prev.size() == D && aux.size() == (gru ? D : 0),
              "lstm-bridge native: backward needs one grad_out/grad_hn/h_prev per direction (", D,
              ") and one aux per direction for the GRU (none for the RNN); received ", grad_out.size(), ", ",
              grad_hn.size(), ", ", h_prev.size(), " and ", aux.size());
  const int64_t Tn = gates.size(0), B = gates.size(1), S = gates.size(2);
  const uint8_t* vptr = valid.numel() > 0 ? valid.data_ptr<uint8_t>() : nullptr;
  at::Tensor dZ = pooled_empty(gates.sizes(), gates.options());
  std::vector<at::Tensor> gout(D), hprev(D), auxc(D);
  std::vector<std::vector<at::Tensor>> result(3);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_bridge_family_backward", [&] {
    auto dirs = family_dirs<scalar_t>(cfg, w_hh, rec_mask, gates.options(), B, grad_hn, "grad h_n", false);
    for (size_t d = 0; d < D; ++d) {
      FamDir<scalar_t>& r = dirs[d];
      const std::vector<int64_t> shape = {Tn, B, r.H};
      const at::IntArrayRef seq(shape);
      TORCH_CHECK(grad_out[d].sizes() == seq && h_prev[d].sizes() == seq && (!gru || aux[d].sizes() == seq),
                  "lstm-bridge native: grad_out/h_prev/aux[", d, "] must be (", Tn, ", ", B, ", ", r.H,
                  "); received ", grad_out[d].sizes(), ", ", h_prev[d].sizes(), (gru ? " and " : ""),
                  (gru ? aux[d].sizes() : at::IntArrayRef()));
      gout[d] = grad_out[d].to(gates.options()).contiguous();
      hprev[d] = h_prev[d].to(gates.options()).contiguous();
      r.gout = gout[d].data_ptr<scalar_t>();
      r.hprev_in = hprev[d].data_ptr<scalar_t>();
      if (gru) {
        auxc[d] = aux[d].to(gates.options()).contiguous();
        r.aux_in = auxc[d].data_ptr<scalar_t>();
      }
      if (cfg.form == kGruAfter) r.daux = pooled_empty({Tn, B, r.H}, gates.options());
    }
    const scalar_t* gptr = gates.data_ptr<scalar_t>();
    scalar_t* dzp = dZ.data_ptr<scalar_t>();
    for_each_item(static_cast<int64_t>(D), B, family_work(dirs, Tn, B), [&](int64_t d, int64_t b0, int64_t b1) {
      backward_rows<scalar_t>(cfg, gptr, dzp, Tn, B, S, vptr, dirs[d], b0, b1);
    });
    result[0].push_back(dZ);
    for (auto& r : dirs) {
      result[1].push_back(r.r_h);
      if (cfg.form == kGruAfter) result[2].push_back(r.daux);
    }
  });
  return result;
}

void register_family(pybind11::module_& m) {
  namespace py = pybind11;
  py::class_<FamilyConfig>(m, "FamilyConfig")
      .def(py::init<>())
      .def_readwrite("form", &FamilyConfig::form)
      .def_readwrite("offsets", &FamilyConfig::offsets)
      .def_readwrite("reverse", &FamilyConfig::reverse)
      .def_readwrite("gate_act", &FamilyConfig::gate_act)
      .def_readwrite("cand_act", &FamilyConfig::cand_act)
      .def_readwrite("carry", &FamilyConfig::carry)
      .def_readwrite("ms_order", &FamilyConfig::ms_order)
      .def_readwrite("save", &FamilyConfig::save);
  m.def("family_forward", &family_forward, "Fused GRU/RNN layer forward (see family.h)", py::arg("cfg"),
        py::arg("xp"), py::arg("w_hh"), py::arg("h0"), py::arg("valid"), py::arg("rec_mask"), py::arg("bias_x"),
        py::arg("bias_h"));
  m.def("family_backward", &family_backward, "Fused GRU/RNN layer backward (see family.h)", py::arg("cfg"),
        py::arg("gates"), py::arg("grad_out"), py::arg("grad_hn"), py::arg("h_prev"), py::arg("aux"),
        py::arg("w_hh"), py::arg("valid"), py::arg("rec_mask"));
  m.attr("FAMILY_RNN") = static_cast<int64_t>(kRnn);
  m.attr("FAMILY_GRU_AFTER") = static_cast<int64_t>(kGruAfter);
  m.attr("FAMILY_GRU_BEFORE") = static_cast<int64_t>(kGruBefore);
}

}  // namespace lstm_bridge
