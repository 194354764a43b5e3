"""Former home of the Keras file helpers, kept for the names imported from here before the split:
the HDF5 helpers are in :mod:`.hdf5`, Keras config reading in :mod:`.keras_config`, the planner in
:mod:`.keras_plan`.
"""

from __future__ import annotations

from .keras_plan import lstm_config, target_activation

__all__ = ["lstm_config", "target_activation"]
