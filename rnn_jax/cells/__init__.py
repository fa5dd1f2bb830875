"""Recurrent cells as pure functions over a params dict.

Every cell splits its work in two, as cuDNN does:

* ``input_projection(params, x)`` maps the inputs of *all* time steps,
  ``[T, B, D] -> [T, B, G*H]``, in one large matmul outside the scan;
* ``step(params, carry, xp_t)`` does what must be sequential: the recurrent
  matmul ``h_{t-1} @ W_hh`` and the gate nonlinearities.

The classic cells (``classic``) share the parameter names of the lecture:
``W_xh`` (input to hidden, gates stacked along the last axis), ``W_hh``
(hidden to hidden) and ``b_h``. The diagonal linear recurrences (``linear``)
and the matrix-memory ones (``matrix``) have no ``W_hh``: their recurrence
runs on coefficients computed from the inputs alone, which lets a whole
sequence be computed in parallel forms too. The output layer ``o_t = W_ho h_t + b_o`` belongs to the model that
reads the hidden states (see ``rnn_jax.models``), so that stacks can feed one cell's
``h`` into the next.
"""

from typing import Any

from rnn_jax.cells.base import ACTIVATIONS, Carry, Cell, Params, mixed_dot  # pylint: disable=unused-import
from rnn_jax.cells.classic import GRU, GRULN, IRNN, LSTM, LSTMLN, RNN
from rnn_jax.cells.linear import LRU, RGLRU, LinearCell, MinGRU, MinLSTM  # pylint: disable=unused-import
from rnn_jax.cells.matrix import GLA, MLSTM, DeltaNet, GatedDeltaNet, Mamba2, MatrixCell  # pylint: disable=unused-import

CELLS = {'rnn': RNN, 'irnn': IRNN, 'gru': GRU, 'lstm': LSTM, 'gru_ln': GRULN,
         'lstm_ln': LSTMLN, 'mingru': MinGRU, 'minlstm': MinLSTM,
         'lru': LRU, 'rglru': RGLRU, 'mlstm': MLSTM, 'gla': GLA,
         'deltanet': DeltaNet, 'gated_deltanet': GatedDeltaNet,
         'mamba2': Mamba2}


def make_cell(name: str, hidden_size: int, *, activation: str = 'tanh',
              init_scale: float | None = None, recurrent: bool = True,
              compute_dtype: Any = None, num_heads: int = 4,
              short_conv: int = 0) -> Cell:
  """Builds a cell by its config name (`model.cell`); `num_heads` and
  `short_conv` apply to the matrix-memory cells."""
  if name not in CELLS:
    raise ValueError(f'unknown cell {name!r}; choose one of {sorted(CELLS)}')
  kwargs = dict(hidden_size=hidden_size, init_scale=init_scale or None,
                recurrent=recurrent, compute_dtype=compute_dtype)
  if name == 'rnn':
    kwargs['activation'] = activation
  if issubclass(CELLS[name], MatrixCell):
    kwargs.update(num_heads=num_heads, short_conv=short_conv)
  return CELLS[name](**kwargs)
