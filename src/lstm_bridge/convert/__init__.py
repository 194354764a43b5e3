"""Conversion between the Keras, MindSpore and PyTorch recurrent layers, in three rooms:

* :mod:`.modules`: Keras layer(s) <-> ``lstm_bridge.mindspore.LSTM`` <-> ``torch.nn.LSTM`` through the
  neutral :class:`LSTMStack` (bit-exact on the weights; what maps to what is in its docstring);
* :mod:`.chain`: :class:`Chain`, the recurrent layers of a file or module with their exact semantics
  (:class:`~lstm_bridge.recurrent.RecurrentLayer`, also known as ``ChainLayer``), and :func:`run_chain`,
  which runs one on the engine;
* :mod:`.compare`: :func:`compare_chains` / :func:`pair_layers` (what the CLI's verification uses).

What a target can express is :mod:`lstm_bridge.targets`' to say; these modules ask it.
"""

from .chain import (
    Chain,
    ChainLayer,
    ChainResult,
    chain_from,
    chain_from_lstm_layers,
    chain_from_model_file,
    keras_outputs,
    run_chain,
    standard_violations,
)
from .compare import LayerDiff, compare_chains, pair_layers
from .modules import (
    LSTMStack,
    from_torch,
    keras_mask_to_seq_length,
    keras_to_mindspore,
    mindspore_to_keras,
    run_keras_stack,
    stack_from,
    to_torch,
)

__all__ = [
    "LSTMStack",
    "keras_to_mindspore",
    "mindspore_to_keras",
    "to_torch",
    "from_torch",
    "stack_from",
    "run_keras_stack",
    "keras_mask_to_seq_length",
    "Chain",
    "ChainLayer",
    "ChainResult",
    "chain_from",
    "chain_from_model_file",
    "chain_from_lstm_layers",
    "keras_outputs",
    "run_chain",
    "standard_violations",
    "LayerDiff",
    "compare_chains",
    "pair_layers",
]
