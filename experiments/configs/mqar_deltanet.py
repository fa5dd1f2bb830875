"""Multi-query associative recall (MQAR, Arora et al. 2023) at length 256
with 16 key-value pairs among 256 tokens, by DeltaNet: two pre-norm
residual blocks of 64 channels in one head with short convolutions, Adam at
2e-3, 1,000 batches of 32 fresh sequences.

Command:  python launch.py --experiment=memory --preset=mqar_deltanet
Expected: test accuracy 99.97% on the queried values (valid 99.98%; chance
0.78%), measured; valid 99.39% at step 500, the first evaluation. 19
minutes on 2 CPU cores shared with the test suite; the same steps took 9.5
minutes beside lighter work (4.1 minutes to step 500). One head of 64
channels holds a 64 x 64 state per layer; four heads of 16 hold four of
16 x 16, a quarter of it, and reached 96.3% only after 4,000 steps.
"""

from rnn_jax.experiments import memory

EXPERIMENT = 'memory'


def get_config():
  c = memory.Memory().get_config()
  c.data.update(name='mqar', delay=256, num_pairs=16, vocab_size=256,
                batch_size=32, train_size=16_000)
  c.model.update(cell='deltanet', hidden_size=64, num_layers=2,
                 block='residual', short_conv=4, num_heads=1, chunk_size=16)
  c.train.update(learning_rate=0.002, num_epochs=2, log_every_steps=50)
  return c
