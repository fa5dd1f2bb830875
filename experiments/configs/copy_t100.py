"""Copy memory at T = 100 (Arjovsky, Shah & Bengio 2016) with the cell that
solves it here: the LRU, whose complex diagonal recurrence started near the
unit circle is a bank of slowly decaying oscillators -- recalling what came
T + 10 steps earlier is a fixed delay, which such a bank represents.

Command:  python launch.py --experiment=memory --preset=copy_t100
Expected: test accuracy on the symbols to recall 0.9994, cross-entropy
0.00038 nats per step (the layout alone: 0.1733), measured; 2 minutes on 2
CPU cores (with another run beside it).
"""

from rnn_jax.experiments import memory

EXPERIMENT = 'memory'


def get_config():
  """The memory defaults with the copy task and the LRU."""
  c = memory.Memory().get_config()
  c.data.name = 'copy'
  c.data.delay = 100
  c.model.cell = 'lru'
  c.train.learning_rate = 1e-3
  c.train.num_epochs = 10
  return c
