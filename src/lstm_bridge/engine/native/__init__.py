"""The fused native CPU path of the engine: :func:`run_layer` with the torch path's exact contract.

Layers (haste-style): ``lstm.h`` (shape contract) / ``lstm.cpp`` (the recurrence, forward and
backward) -> this module (checks, the input projection and weight-gradient GEMMs, one
``torch.autograd.Function``) -> :func:`lstm_bridge.engine.run_layer`.

Work shape per layer call:

* one GEMM projects all time steps of all directions: ``xp = x W_cat^T + b`` with ``W_cat`` the
  directions' ``w_ih`` stacked (per direction / per gate when input dropout masks are present);
* the kernel runs the steps: per step and direction one recurrent GEMM + one fused pointwise pass,
  overwriting ``xp`` with the activated gates (kept for backward, so training memory stays small);
* backward: the kernel returns ``dZ`` (pre-activation gradients); ``dW_hh``, ``dW_ih``, ``dx`` and the
  bias gradients are each one large GEMM / reduction over all steps.

The kernel is built on first use (see :mod:`.build`); ``LSTM_BRIDGE_BACKEND=torch`` never builds it.
Standard semantics (sigmoid/tanh/tanh without masks or dropout) are left to the torch path, which
hands them to oneDNN's fused ``torch.lstm``.
"""
from __future__ import annotations

import os
import threading
from types import ModuleType
from typing import Any, List, Optional, Sequence, Tuple

import torch

from ..semantics import DirectionWeights, DropoutMasks, LayerSemantics, MaskedOutput

Tensor = torch.Tensor

__all__ = ["available", "error", "check_supported", "run_layer", "native_activation_id", "release_workspace"]

_module: Optional[ModuleType] = None
_error: Optional[str] = None
_tried = False
_EMPTY = torch.empty(0)
# The per-step recurrent GEMM: "kernel" (our register-blocked micro-kernel over W_hh packed once per
# call; the default), "mkl" (MKL's packed-GEMM API, float32 and MKL builds only; otherwise "kernel"),
# or "aten" (at::mm per step). Tests switch it to cover every path.
GEMM_PATH = "kernel"
# Standard semantics (sigmoid/tanh/tanh, no masks, no dropout) with batch * hidden units at most this
# run in the kernel; larger ones go to oneDNN through the torch path. Measured with `lstm-bridge bench`
# (AMD EPYC, 2 threads, ratios to torch.nn.LSTM, forward/train): small (B*H = 1024) kernel 1.15/1.02
# vs oneDNN 1.19/1.13, small Bidirectional train 0.98 vs 1.24, long (1024) 1.05/0.91 vs 1.05/1.05;
# oneDNN won the forward at medium (8192: 1.06 vs 1.18) and large (32768: 1.02 vs 1.06).
NATIVE_STANDARD_MAX_BH = 2048

# Activation ids shared with lstm.h (enum Act); the lstm_bridge.activations registry carries them.
_MAX_ID = 8  # enum Act in lstm.h


def _backend_disabled() -> bool:
    return os.environ.get("LSTM_BRIDGE_BACKEND", "auto").strip().lower() == "torch"


def available() -> bool:
    """True when the kernel is built and loadable; builds it on the first call (once, cached).

    Returns False (reason in :func:`error`) when the toolchain is missing, the build failed, or
    ``LSTM_BRIDGE_BACKEND=torch`` (which never builds).
    """
    global _module, _error, _tried
    if _module is not None:
        return True
    if _backend_disabled():
        return False
    if _tried:
        return False
    _tried = True
    from . import build

    try:
        _module, _ = build.load()
    except (RuntimeError, OSError, ImportError) as exc:  # a failed build/load: recorded, shown by backend
        _error = f"native kernel build/load failed: {exc}"
        return False
    _error = None
    return True


def error() -> Optional[str]:
    """Why the kernel is unavailable, or None."""
    if _module is None and _backend_disabled():
        return "disabled by LSTM_BRIDGE_BACKEND=torch"
    return _error


def native_activation_id(fn: Any) -> Optional[int]:
    """The kernel's code for an activation (``Activation.native_id``; raw torch.sigmoid/tanh too)."""
    if fn is torch.sigmoid:
        return 0
    if fn is torch.tanh:
        return 1
    native_id = getattr(fn, "native_id", None)
    if isinstance(native_id, int) and 0 <= native_id <= _MAX_ID:
        return native_id
    return None


def check_supported(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    *,
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> None:
    """Raise ``NotImplementedError`` when the kernel cannot (or should not) run this request.

    Not supported: non-CPU tensors, dtypes other than float32/float64, mixed dtypes, activations
    without a ``native_id`` (arbitrary Python callables), empty sequences or batches, and exactly
    standard semantics with ``batch * hidden > NATIVE_STANDARD_MAX_BH`` (left to oneDNN through the
    torch path, faster there).
    """
    if x.device.type != "cpu":
        raise NotImplementedError(f"native kernel runs on CPU only; received x on {x.device}")
    if x.dtype not in (torch.float32, torch.float64):
        raise NotImplementedError(f"native kernel supports float32/float64; received {x.dtype}")
    if x.dim() != 3 or x.shape[0] == 0 or x.shape[1] == 0:
        raise NotImplementedError(f"native kernel needs a non-empty (T, B, I) input; received {tuple(x.shape)}")
    tensors: List[Tensor] = []
    for w in directions:
        tensors += [t for t in (w.w_ih, w.w_hh, w.b_ih, w.b_hh) if t is not None]
    for d in dropout:
        if d is not None:
            tensors += [t for t in (d.inputs, d.recurrent) if t is not None]
    for t in tensors:
        if t.device.type != "cpu" or t.dtype != x.dtype:
            raise NotImplementedError(
                f"native kernel needs all weights/masks on CPU in {x.dtype}; received {t.dtype} on {t.device}")
    acts = semantics.activations
    for role, fn in (("gate", acts.gate), ("candidate", acts.candidate), ("cell", acts.cell)):
        if native_activation_id(fn) is None:
            raise NotImplementedError(f"{role} activation {fn!r} has no native implementation")
    no_dropout = all(d is None or d.is_empty() for d in dropout)
    if valid is None and no_dropout and acts.is_standard:
        if semantics.onednn_bits:
            raise NotImplementedError("standard LSTM semantics computed by oneDNN in the source framework: "
                                      "the torch path hands these to oneDNN, bit for bit")
        bh = x.shape[1] * max(w.hidden_size for w in directions)
        if bh > NATIVE_STANDARD_MAX_BH:
            raise NotImplementedError(f"standard LSTM semantics with batch*hidden = {bh} > {NATIVE_STANDARD_MAX_BH}: "
                                      "the torch path hands these to oneDNN")


def _check_shapes(x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor],
                  c0: Sequence[Tensor], reverse: Sequence[bool], valid: Optional[Tensor],
                  dropout: Sequence[Optional[DropoutMasks]]) -> None:
    T, B, I = x.shape
    D = len(directions)
    if not (len(h0) == len(c0) == len(reverse) == len(dropout) == D):
        raise ValueError(f"run_layer needs one h0, c0, reverse flag and dropout entry per direction ({D}); "
                         f"received {len(h0)}, {len(c0)}, {len(reverse)}, {len(dropout)}")
    for d, w in enumerate(directions):
        H = w.hidden_size
        if tuple(w.w_ih.shape) != (4 * H, I) or tuple(w.w_hh.shape) != (4 * H, H):
            raise ValueError(f"direction {d}: expected w_ih (4H, I) = {(4 * H, I)} and w_hh (4H, H) = "
                             f"{(4 * H, H)}; received {tuple(w.w_ih.shape)} and {tuple(w.w_hh.shape)}")
        for name, b in (("b_ih", w.b_ih), ("b_hh", w.b_hh)):
            if b is not None and tuple(b.shape) != (4 * H,):
                raise ValueError(f"direction {d}: expected {name} ({4 * H},); received {tuple(b.shape)}")
        for name, s in (("h0", h0[d]), ("c0", c0[d])):
            if tuple(s.shape) != (B, H):
                raise ValueError(f"direction {d}: expected {name} {(B, H)}; received {tuple(s.shape)}")
        drop = dropout[d]
        if drop is not None:
            for name, m, width in (("inputs", drop.inputs, I), ("recurrent", drop.recurrent, H)):
                if m is not None and (m.dim() != 3 or m.shape[0] not in (1, 4) or tuple(m.shape[1:]) != (B, width)):
                    raise ValueError(f"direction {d}: dropout {name} mask must be (G in {{1, 4}}, {B}, {width}); "
                                     f"received {tuple(m.shape)}")
    if valid is not None and tuple(valid.shape) != (T, B):
        raise ValueError(f"valid must be (T, B) = {(T, B)}; received {tuple(valid.shape)}")


class _Plan:
    """Everything non-differentiable about one call: config for the kernel, masks, offsets."""

    def __init__(self, ext: ModuleType, directions: Sequence[DirectionWeights], reverse: Sequence[bool],
                 valid: Optional[Tensor], semantics: LayerSemantics,
                 dropout: Sequence[Optional[DropoutMasks]], x: Tensor, record: bool):
        self.D = len(directions)
        self.H = [w.hidden_size for w in directions]
        self.offsets: List[int] = []
        total = 0
        for H in self.H:
            self.offsets.append(total)
            total += 4 * H
        self.S = total
        self.has_b_ih = [w.b_ih is not None for w in directions]
        self.has_b_hh = [w.b_hh is not None for w in directions]
        self.in_masks: List[Optional[Tensor]] = []
        self.rec_masks: List[Optional[Tensor]] = []
        for d in dropout:
            self.in_masks.append(None if d is None or d.inputs is None else d.inputs.detach().contiguous())
            self.rec_masks.append(None if d is None or d.recurrent is None else d.recurrent.detach().contiguous())
        self.valid = _EMPTY if valid is None else valid.detach().to(torch.uint8).contiguous()
        acts = semantics.activations
        cfg = ext.LayerConfig()
        cfg.offsets = self.offsets
        cfg.reverse = [bool(r) for r in reverse]
        cfg.gate_act = native_activation_id(acts.gate)
        cfg.cand_act = native_activation_id(acts.candidate)
        cfg.cell_act = native_activation_id(acts.cell)
        cfg.carry = semantics.masked_output is MaskedOutput.CARRY
        cfg.gemm = _gemm_code(ext, x.dtype)
        self.cfg = cfg
        self.ext = ext
        self.record = record  # autograd records this call (grad mode on and some input requires grad)
        self.empty = x.new_empty(0)

    def rec_mask_args(self) -> List[Tensor]:
        return [self.empty if m is None else m for m in self.rec_masks]


def _gemm_code(ext: ModuleType, dtype: torch.dtype) -> int:
    if GEMM_PATH == "kernel":
        return ext.GEMM_KERNEL
    if GEMM_PATH == "aten":
        return ext.GEMM_ATEN
    if GEMM_PATH == "mkl":
        return ext.GEMM_MKL if ext.HAS_PACKED_GEMM and dtype == torch.float32 else ext.GEMM_KERNEL
    raise ValueError(f"native.GEMM_PATH must be 'kernel', 'mkl' or 'aten'; received {GEMM_PATH!r}")


def _bias(b_ih: Optional[Tensor], b_hh: Optional[Tensor]) -> Optional[Tensor]:
    if b_ih is None:
        return b_hh
    return b_ih if b_hh is None else b_ih + b_hh


# Below this many multiply-adds the projection runs on the kernel's own micro-kernel (oneDNN's and
# MKL's per-call set-up cost more than they save); above it, oneDNN's matmul measured 0.73-0.90x MKL's
# time on the benchmark shapes (AMD EPYC, 2 threads; MKL does not use AVX-512 there).
_ONEDNN_MIN_MACS = 1 << 24


def _onednn_linear_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


_ONEDNN_LINEAR = _onednn_linear_available()


def _matmul_nt(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b.T`` for ``a (M, K)``, ``b (N, K)`` (no autograd): oneDNN's matmul for large float32
    products, the kernel's own micro-kernel for small ones (the small benchmark's 800x32x256 took
    ~95 us in MKL between two kernel calls), else torch.mm."""
    M, K = a.shape
    macs = M * K * b.shape[0]
    if macs < _ONEDNN_MIN_MACS and _module is not None:
        return _module.matmul_nt(a, b)
    if _ONEDNN_LINEAR and a.dtype == torch.float32:
        return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    return torch.mm(a, b.t())


# glibc serves blocks above its largest mmap threshold (32 MiB) with fresh pages on every call: for the
# large benchmark's 52 MB projection, page faults and zeroing cost ~15 ms of a ~180 ms forward. Inference
# projections that big go into a per-thread buffer kept between calls (training keeps its projection
# for backward, so it cannot be reused).
_WORKSPACE_MIN_BYTES = 32 << 20


class _Workspace(threading.local):
    buffer: Optional[Tensor] = None


_workspace = _Workspace()


def _inference_buffer(numel: int, dtype: torch.dtype) -> Optional[Tensor]:
    """A reusable flat buffer of ``numel`` elements for an inference projection, or None when small."""
    if numel * torch.finfo(dtype).bits // 8 < _WORKSPACE_MIN_BYTES:
        return None
    buf = _workspace.buffer
    if buf is None or buf.dtype != dtype or buf.numel() < numel:
        _workspace.buffer = None  # free the old one before allocating the new one
        buf = _workspace.buffer = torch.empty(numel, dtype=dtype)
    return buf[:numel]


def release_workspace() -> None:
    """Free this thread's inference workspace (it is kept between calls; see ``_WORKSPACE_MIN_BYTES``)."""
    _workspace.buffer = None


def _input_projection(plan: _Plan, x: Tensor, w_ih: Sequence[Tensor], b_ih: Sequence[Optional[Tensor]],
                      b_hh: Sequence[Optional[Tensor]], out: Optional[Tensor] = None) -> Tuple[Tensor, List[Tensor]]:
    """``(T, B, I) -> (T, B, S)``: every direction's ``W_ih x_t`` in column blocks per direction, and
    the per-direction biases ``b_ih + b_hh`` the kernel still has to add (empty when xp holds them).

    Without input dropout the bias is left to the kernel's pointwise pass: ``torch.addmm`` with a
    broadcast bias first copies it into the whole ``(T*B, S)`` output, a pass over memory as long as
    the GEMM's own output write. ``out`` (flat, ``T*B*S`` elements) receives the projection when given.
    """
    T, B, I = x.shape
    x2 = x.reshape(T * B, I)
    biases = [_bias(bi, bh) for bi, bh in zip(b_ih, b_hh)]
    if all(m is None for m in plan.in_masks):
        weight = w_ih[0] if plan.D == 1 else torch.cat(list(w_ih), 0)
        kernel_bias = [plan.empty if b is None else b.detach() for b in biases]
        if out is not None:
            return torch.mm(x2, weight.detach().t(), out=out.view(T * B, plan.S)).view(T, B, plan.S), kernel_bias
        return _matmul_nt(x2, weight.detach()).view(T, B, plan.S), kernel_bias
    xp = x.new_empty(T, B, plan.S)
    for d in range(plan.D):
        H, off, m, bias = plan.H[d], plan.offsets[d], plan.in_masks[d], biases[d]
        block = xp[..., off:off + 4 * H]
        if m is None:
            block.copy_((torch.mm(x2, w_ih[d].t()) if bias is None else torch.addmm(bias, x2, w_ih[d].t()))
                        .view(T, B, 4 * H))
        elif m.shape[0] == 1:
            xm = (x * m[0]).reshape(T * B, I)
            block.copy_((torch.mm(xm, w_ih[d].t()) if bias is None else torch.addmm(bias, xm, w_ih[d].t()))
                        .view(T, B, 4 * H))
        else:  # one mask per gate, as the torch path: bmm then bias
            xm = (x.unsqueeze(0) * m.unsqueeze(1)).reshape(4, T * B, I)
            per_gate = torch.bmm(xm, w_ih[d].view(4, H, I).transpose(1, 2))
            out = per_gate.permute(1, 0, 2).reshape(T, B, 4 * H)
            block.copy_(out if bias is None else out + bias)
    return xp, [plan.empty] * plan.D


class _NativeLayer(torch.autograd.Function):
    """One layer through the kernel. Inputs: plan, x, then per direction lists of
    w_ih, w_hh, b_ih, b_hh, h0, c0 (flattened; None for absent biases). Outputs: outs, h_n, c_n."""

    @staticmethod
    def forward(ctx, plan: _Plan, x: Tensor, *flat: Optional[Tensor]):  # type: ignore[override]
        D = plan.D
        w_ih, w_hh = flat[0:D], flat[D:2 * D]
        b_ih, b_hh = flat[2 * D:3 * D], flat[3 * D:4 * D]
        h0, c0 = flat[4 * D:5 * D], flat[5 * D:6 * D]
        # needs_input_grad reflects requires_grad even under torch.no_grad(); plan.record says whether
        # autograd will actually record this call (decided outside, where grad mode is visible).
        save = plan.record and any(ctx.needs_input_grad)
        plan.cfg.save = save
        T, B, _ = x.shape
        reuse = None if save else _inference_buffer(T * B * plan.S, x.dtype)
        xp, kernel_bias = _input_projection(plan, x, w_ih, b_ih, b_hh, out=reuse)
        outs, hn, cn, cprev, hprev = plan.ext.forward(plan.cfg, xp.contiguous(), list(w_hh), list(h0), list(c0),
                                                      plan.valid, plan.rec_mask_args(), kernel_bias)
        if save:
            ctx.plan = plan
            ctx.gates = xp  # overwritten in place by the kernel: activated gates of every step
            ctx.cprev = cprev
            ctx.hprev = hprev
            ctx.save_for_backward(x, *w_ih, *w_hh)
        return (*outs, *hn, *cn)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads: Tensor):  # type: ignore[override]
        plan: _Plan = ctx.plan
        D = plan.D
        saved = ctx.saved_tensors
        x, w_ih, w_hh = saved[0], saved[1:1 + D], saved[1 + D:1 + 2 * D]
        need = ctx.needs_input_grad  # (plan, x, w_ih*D, w_hh*D, b_ih*D, b_hh*D, h0*D, c0*D)
        g_out = [g.contiguous() for g in grads[0:D]]
        g_hn, g_cn = list(grads[D:2 * D]), list(grads[2 * D:3 * D])
        (dZ,), dh0, dc0 = plan.ext.backward(plan.cfg, ctx.gates, g_out, g_hn, g_cn, ctx.cprev, list(w_hh),
                                            plan.valid, plan.rec_mask_args())
        T, B, I = x.shape
        dZ2 = dZ.view(T * B, plan.S)
        x2 = x.reshape(T * B, I)
        d_w_ih: List[Optional[Tensor]] = [None] * D
        d_w_hh: List[Optional[Tensor]] = [None] * D
        d_b_ih: List[Optional[Tensor]] = [None] * D
        d_b_hh: List[Optional[Tensor]] = [None] * D
        dx: Optional[Tensor] = None
        for d in range(D):
            H, off = plan.H[d], plan.offsets[d]
            dz = dZ2[:, off:off + 4 * H]
            if need[2 + D + d]:  # w_hh: one GEMM over all steps against the (masked) h sequence
                h_seq = ctx.hprev[d]
                m = plan.rec_masks[d]
                if m is None:
                    d_w_hh[d] = dz.t().mm(h_seq.view(T * B, H))
                elif m.shape[0] == 1:
                    d_w_hh[d] = dz.t().mm((h_seq * m[0]).view(T * B, H))
                else:
                    hm = (h_seq.unsqueeze(0) * m.unsqueeze(1)).view(4, T * B, H)
                    d_w_hh[d] = torch.bmm(dz.view(T * B, 4, H).permute(1, 2, 0), hm).reshape(4 * H, H)
            if need[2 + 2 * D + d] or need[2 + 3 * D + d]:
                db = dz.sum(0)
                both = need[2 + 2 * D + d] and need[2 + 3 * D + d]
                d_b_ih[d] = db if need[2 + 2 * D + d] else None
                d_b_hh[d] = (db.clone() if both else db) if need[2 + 3 * D + d] else None  # no shared .grad
        need_x = need[1]
        need_wih = any(need[2 + d] for d in range(D))
        if all(m is None for m in plan.in_masks):
            if need_x:
                weight = w_ih[0] if D == 1 else torch.cat(list(w_ih), 0)
                dx = dZ2.mm(weight).view(T, B, I)
            if need_wih:
                d_w = dZ2.t().mm(x2)  # (S, I): all directions in one GEMM
                for d in range(D):
                    if need[2 + d]:
                        d_w_ih[d] = d_w[plan.offsets[d]:plan.offsets[d] + 4 * plan.H[d]]
        else:
            dx = x.new_zeros(T, B, I) if need_x else None
            for d in range(D):
                H, off, m = plan.H[d], plan.offsets[d], plan.in_masks[d]
                dz = dZ2[:, off:off + 4 * H]
                if m is None:
                    if need_x:
                        dx += dz.mm(w_ih[d]).view(T, B, I)
                    if need[2 + d]:
                        d_w_ih[d] = dz.t().mm(x2)
                elif m.shape[0] == 1:
                    if need_x:
                        dx += dz.mm(w_ih[d]).view(T, B, I) * m[0]
                    if need[2 + d]:
                        d_w_ih[d] = dz.t().mm((x * m[0]).reshape(T * B, I))
                else:
                    dz4 = dz.view(T * B, 4, H).transpose(0, 1)  # (4, T*B, H)
                    if need_x:
                        dxm = torch.bmm(dz4, w_ih[d].view(4, H, I))  # (4, T*B, I)
                        dx += (dxm.view(4, T, B, I) * m.unsqueeze(1)).sum(0)
                    if need[2 + d]:
                        xm = (x.unsqueeze(0) * m.unsqueeze(1)).reshape(4, T * B, I)
                        d_w_ih[d] = torch.bmm(dz4.transpose(1, 2), xm).reshape(4 * H, I)
        return (None, dx, *d_w_ih, *d_w_hh, *d_b_ih, *d_b_hh, *dh0, *dc0)


def run_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    *,
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """Native implementation of :func:`lstm_bridge.engine.run_layer` (same arguments and results).

    Args:
        x: ``(T, B, I)`` float32/float64 CPU.  h0, c0: per direction ``(B, H_d)``.
        reverse: per direction, time runs T-1 .. 0.  valid: ``(T, B)`` bool or None.
        semantics: activations (each with a ``native_id``) and the masked-output rule.
        dropout: per direction :class:`DropoutMasks` (``(G, B, I)`` / ``(G, B, H)``, G in {1, 4}) or None.

    Returns:
        ``(outputs, h_n, c_n)`` lists over directions; ``outputs[d]`` is ``(T, B, H_d)`` indexed by
        original time.

    Raises:
        NotImplementedError: see :func:`check_supported`.  RuntimeError: the kernel is not built.
    """
    if dropout is None:
        dropout = [None] * len(directions)
    check_supported(x, directions, valid=valid, semantics=semantics, dropout=dropout)
    return run_layer_checked(x, directions, h0, c0, reverse=reverse, valid=valid, semantics=semantics,
                             dropout=dropout)


def run_layer_checked(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    *,
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """:func:`run_layer` for a request :func:`check_supported` has already accepted (the backend's
    selection runs it; a second pass costs ~10 us per call on small layers)."""
    _check_shapes(x, directions, h0, c0, reverse, valid, dropout)
    if not available():
        raise RuntimeError("lstm-bridge native kernel unavailable: " + (error() or "unknown reason"))
    D = len(directions)
    flat = ([w.w_ih for w in directions] + [w.w_hh for w in directions] + [w.b_ih for w in directions]
            + [w.b_hh for w in directions] + [h.to(x.dtype) for h in h0] + [c.to(x.dtype) for c in c0])
    record = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in [x] + flat)
    plan = _Plan(_module, directions, reverse, valid, semantics, dropout, x, record)
    results = _NativeLayer.apply(plan, x, *flat)
    outs = list(results[0:D])
    hn = list(results[D:2 * D])
    cn = list(results[2 * D:3 * D])
    return outs, hn, cn
