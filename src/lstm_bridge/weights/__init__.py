"""Canonical LSTM weights and every foreign layout (Keras, MindSpore = PyTorch, ONNX, legacy).

See :mod:`lstm_bridge.weights.layouts` for the layout table; this package only re-exports it.
Canonical weights per (layer, direction): ``w_ih (4H, I)``, ``w_hh (4H, H)``, ``b_ih (4H,)``,
``b_hh (4H,)``, gate order **i, f, g, o**: one :class:`lstm_bridge.recurrent.DirectionWeights`
(``LSTMWeights`` is the same class under its older name).
"""

from .layouts import (
    GATES_CANONICAL,
    GATES_ONNX,
    DirectionWeights,
    LSTMWeights,
    UnsupportedLayoutError,
    check_mindspore_layout,
    from_cudnn_lstm,
    from_keras,
    from_keras1,
    from_onnx,
    from_torch_state_dict,
    to_keras,
    to_onnx,
    to_torch_state_dict,
    torch_param_names,
)

__all__ = [
    "GATES_CANONICAL",
    "GATES_ONNX",
    "DirectionWeights",
    "LSTMWeights",
    "UnsupportedLayoutError",
    "check_mindspore_layout",
    "from_cudnn_lstm",
    "from_keras",
    "from_keras1",
    "from_onnx",
    "from_torch_state_dict",
    "to_keras",
    "to_onnx",
    "to_torch_state_dict",
    "torch_param_names",
]
