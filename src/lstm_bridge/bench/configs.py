"""Benchmark sizes (``Config``: T, B, I, H, layers, direction), the variants, and their inputs."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch


@dataclasses.dataclass(frozen=True)
class Config:
    """One benchmark size: ``T`` steps, batch ``B``, input size ``I``, hidden size ``H``, stacked layers,
    and whether the config itself is bidirectional (every variant then runs on both directions)."""

    name: str
    T: int
    B: int
    I: int  # noqa: E741 (the issue's name)
    H: int
    layers: int = 1
    bidirectional: bool = False

    def directions(self, variant: str) -> int:
        """2 when this config or the variant is bidirectional, else 1."""
        family = FAMILY_VARIANTS.get(variant)
        bidirectional = variant == "bidirectional" or (family is not None and family.bidirectional)
        return 2 if (self.bidirectional or bidirectional) else 1

    def forward_flops(self, variant: str) -> float:
        """GEMM FLOPs of one forward: ``sum_l D * T * B * 2 * G*H * (I_l + H)``, ``I_l = I`` then ``D*H``;
        ``G`` gates: 4 (LSTM), 3 (GRU), 1 (simple RNN)."""
        D = self.directions(variant)
        family = FAMILY_VARIANTS.get(variant)
        gates = 4 if family is None else family.gates
        total = 0.0
        for layer in range(self.layers):
            in_size = self.I if layer == 0 else D * self.H
            total += D * self.T * self.B * 2.0 * gates * self.H * (in_size + self.H)
        return total

    def label(self) -> str:
        """``"name (T,B,I,H[, L layers][, bidirectional])"``."""
        extra = f", {self.layers} layers" if self.layers > 1 else ""
        extra += ", bidirectional" if self.bidirectional else ""
        if self.name[:1].isdigit():  # a --shape of one's own: its name is its sizes already
            return f"({self.T},{self.B},{self.I},{self.H}{extra})"
        return f"{self.name} ({self.T},{self.B},{self.I},{self.H}{extra})"


CONFIGS: Dict[str, Config] = {
    c.name: c
    for c in (
        Config("small", 50, 16, 32, 64),
        Config("medium", 100, 32, 128, 256),
        Config("large", 100, 64, 512, 512),
        Config("long", 500, 8, 64, 128),
        Config("medium_2l_bidir", 100, 32, 128, 256, layers=2, bidirectional=True),
    )
}
# --quick: the same structure at toy sizes (for smoke tests; timings are meaningless).
QUICK_CONFIGS: Dict[str, Config] = {
    c.name: c
    for c in (
        Config("small", 4, 2, 3, 4),
        Config("medium", 5, 3, 4, 6),
        Config("large", 4, 4, 6, 8),
        Config("long", 12, 2, 3, 4),
        Config("medium_2l_bidir", 5, 3, 4, 6, layers=2, bidirectional=True),
    )
}


def parse_shape(text: str) -> Config:
    """A custom size ``T,B,I,H`` with optional ``,L`` (stacked layers) and ``,bidir``, e.g. ``"200,16,64,256"``
    or ``"100,32,128,256,2,bidir"``; named by its text. ValueError naming the expected form otherwise."""
    form = "T,B,I,H[,layers][,bidir] (positive integers; bidir may be 'bidir' or 'bidirectional')"
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    bidirectional = bool(parts) and parts[-1] in ("bidir", "bidirectional")
    numbers = parts[:-1] if bidirectional else parts
    if len(numbers) not in (4, 5):
        raise ValueError(f"a shape is {form}; received {text!r}")
    try:
        values = [int(v) for v in numbers]
    except ValueError:
        raise ValueError(f"a shape is {form}; received {text!r}") from None
    if any(v < 1 for v in values):
        raise ValueError(f"a shape is {form}; received {text!r} (every size must be at least 1)")
    T, B, I, H = values[:4]  # noqa: E741 (the issue's name)
    layers = values[4] if len(values) == 5 else 1
    return Config(text.strip(), T, B, I, H, layers=layers, bidirectional=bidirectional)


CONFIG_ALIASES = {"bidir": "medium_2l_bidir", "medium-2l-bidir": "medium_2l_bidir", "2l_bidir": "medium_2l_bidir"}


def pick_names(
    text: Optional[str],
    known: Dict[str, Any] | Sequence[str],
    aliases: Dict[str, str],
    what: str,
    default: Iterable[str],
    groups: Optional[Mapping[str, Sequence[str]]] = None,
) -> List[str]:
    """The names a comma-separated option selects, in order, each once: ``all`` (every known name), a group
    name (its members), an alias, or a known name; ``default`` when the option is absent. ValueError naming
    the unknown name and the known ones, or an empty list."""
    if text is None:
        return list(default)
    out: List[str] = []
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name == "all":
            out.extend(known)
            continue
        if groups and name in groups:
            out.extend(groups[name])
            continue
        name = aliases.get(name, name)
        if name not in known:
            extra = "".join(f", '{g}'" for g in groups or {})
            raise ValueError(f"unknown {what} {part.strip()!r}; expected one of {', '.join(known)} (or 'all'{extra})")
        out.append(name)
    if not out:
        raise ValueError(f"--{what}s is empty; expected a comma-separated list of {', '.join(known)}")
    return list(dict.fromkeys(out))


def select_configs(
    names: Optional[str], shapes: Optional[Sequence[str]], table: Dict[str, Config], default: Sequence[str]
) -> List[Config]:
    """The sizes a bench command times: the ``--configs`` names (comma-separated; :data:`CONFIG_ALIASES` and
    ``all`` accepted), then the ``--shape`` sizes of one's own (:func:`parse_shape`, in their order, last).
    Shapes alone replace ``default``; with names they add to them. ValueError naming what was expected."""
    custom = [parse_shape(text) for text in shapes or []]
    picked = pick_names(names, table, CONFIG_ALIASES, "config", [] if custom else default)
    return [table[n] for n in picked] + custom


LSTM_BASELINE = "torch.nn.LSTM"


@dataclasses.dataclass(frozen=True)
class FamilyVariant:
    """A recurrent-family row: a GRU or simple-RNN layer of one front end with some options, timed against
    the matching torch module's standard layer (``torch.nn.GRU`` / ``torch.nn.RNN(nonlinearity=...)``).

    ``options``: keyword arguments of the layer (Keras ``GRU``/``SimpleRNN``, MindSpore ``GRU``/``RNN``);
    ``mask``: Keras mask with holes; ``training``: call in training mode (recurrent dropout);
    ``seq_length``: MindSpore ``seq_length``; ``nonlinearity``: the RNN's (and the baseline's) activation.
    """

    name: str
    cell: str  # "gru" | "rnn"
    front_end: str  # "keras" | "mindspore"
    options: Tuple[Tuple[str, Any], ...] = ()
    mask: bool = False
    training: bool = False
    bidirectional: bool = False
    seq_length: bool = False
    nonlinearity: str = "tanh"

    @property
    def gates(self) -> int:
        """Gate blocks of the input/recurrent matmuls: 3 for GRU, 1 for the simple RNN."""
        return 3 if self.cell == "gru" else 1

    @property
    def baseline(self) -> str:
        """The torch module this row is compared with (its standard layer of the same size)."""
        if self.cell == "gru":
            return "torch.nn.GRU"
        return f"torch.nn.RNN(nonlinearity={self.nonlinearity!r})"


FAMILY_VARIANTS: Dict[str, FamilyVariant] = {
    v.name: v
    for v in (
        FamilyVariant("gru_standard", "gru", "keras"),
        FamilyVariant("gru_hard_sigmoid", "gru", "keras", (("recurrent_activation", "hard_sigmoid"),)),
        FamilyVariant("gru_mask", "gru", "keras", mask=True),
        FamilyVariant("gru_reset_after_false", "gru", "keras", (("reset_after", False),)),
        FamilyVariant("gru_recurrent_dropout", "gru", "keras", (("recurrent_dropout", 0.25),), training=True),
        FamilyVariant("gru_bidirectional", "gru", "keras", bidirectional=True),
        FamilyVariant("rnn_standard", "rnn", "keras"),
        FamilyVariant("rnn_mask", "rnn", "keras", mask=True),
        FamilyVariant("ms_gru_exact", "gru", "mindspore", (("numerics", "exact"),)),
        FamilyVariant("ms_gru_standard", "gru", "mindspore"),
        FamilyVariant("ms_gru_seq_length", "gru", "mindspore", seq_length=True),
        FamilyVariant("ms_rnn_relu", "rnn", "mindspore", nonlinearity="relu"),
    )
}
LSTM_VARIANTS: Tuple[str, ...] = (
    "standard",
    "ms_standard",
    "hard_sigmoid",
    "mask",
    "seq_length",
    "recurrent_dropout",
    "go_backwards",
    "bidirectional",
)
#: LSTM rows outside the default run: ``ms_bits`` is ``mindspore.LSTM(..., numerics="mindspore-cpu-bits")``
#: (MindSpore's fused bits: oneDNN's training kind, in inference too)
EXTRA_LSTM_VARIANTS: Tuple[str, ...] = ("ms_bits",)
VARIANTS: Tuple[str, ...] = LSTM_VARIANTS + EXTRA_LSTM_VARIANTS + tuple(FAMILY_VARIANTS)
# the default run stays the LSTM rows (``--variants family`` or ``all`` adds the GRU/RNN rows)
DEFAULT_VARIANTS: Tuple[str, ...] = LSTM_VARIANTS
VARIANT_GROUPS: Dict[str, Tuple[str, ...]] = {"lstm": LSTM_VARIANTS, "family": tuple(FAMILY_VARIANTS)}
VARIANT_ALIASES = {
    "keras_mask": "mask",
    "masking": "mask",
    "bidir": "bidirectional",
    "bidirectional_concat": "bidirectional",
    "dropout": "recurrent_dropout",
    "hard-sigmoid": "hard_sigmoid",
    "seq-length": "seq_length",
    "go-backwards": "go_backwards",
    "mindspore": "ms_standard",
    "gru": "gru_standard",
    "rnn": "rnn_standard",
    "simple_rnn": "rnn_standard",
    "gru_reset_before": "gru_reset_after_false",
    "ms_gru": "ms_gru_standard",
}
MS_FRONT_END = ("ms_standard", "seq_length", "ms_bits")
RECURRENT_DROPOUT = 0.25
MASK_HOLES = 0.2


def baseline(variant: str) -> str:
    """The torch module a variant is compared with: ``torch.nn.LSTM`` for the LSTM rows, else the family's."""
    family: Optional[FamilyVariant] = FAMILY_VARIANTS.get(variant)
    return LSTM_BASELINE if family is None else family.baseline


def keras_options(variant: str) -> Dict[str, Any]:
    """Keras LSTM keyword arguments of a Keras-front-end variant."""
    options: Dict[str, Dict[str, Any]] = {
        "hard_sigmoid": {"recurrent_activation": "hard_sigmoid"},
        "recurrent_dropout": {"recurrent_dropout": RECURRENT_DROPOUT},
        "go_backwards": {"go_backwards": True},
    }
    return options.get(variant, {})


@dataclasses.dataclass
class Inputs:
    """The data of one config: ``x (B, T, I)`` float32, ``mask (B, T)`` bool (holes), ``lengths (B,)`` int32."""

    x: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor


def make_inputs(cfg: Config, seed: int = 0) -> Inputs:
    """Deterministic inputs for ``cfg``; the mask has ~20% holes, lengths lie in ``[T/2, T]`` with row 0 full."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg.B, cfg.T, cfg.I, generator=gen)
    mask = torch.rand(cfg.B, cfg.T, generator=gen) >= MASK_HOLES
    lengths = torch.randint(max(1, cfg.T // 2), cfg.T + 1, (cfg.B,), generator=gen, dtype=torch.int32)
    lengths[0] = cfg.T
    return Inputs(x, mask, lengths)
