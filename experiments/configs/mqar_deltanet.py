"""Multi-query associative recall (MQAR, Arora et al. 2023) at length 256
with 16 key-value pairs among 256 tokens, by DeltaNet: two pre-norm
residual blocks of 64 channels in 4 heads with short convolutions, Adam at
2e-3, 4,000 batches of 32 fresh sequences.

Command:  python launch.py --experiment=memory --preset=mqar_deltanet
Expected: test accuracy 96.3% on the queried values (valid 96.0%; chance
0.78%), measured; 21 minutes on 2 CPU cores, alone but for a minute. Valid
accuracy every 500 steps: 20.6, 82.8, 87.8, 89.4, 91.9, 94.0, 95.2, 96.0%
(at chance for the first few hundred steps, then rising, and still
climbing at the end).
"""

from rnn_jax.experiments import memory

EXPERIMENT = 'memory'


def get_config():
  c = memory.Memory().get_config()
  c.data.update(name='mqar', delay=256, num_pairs=16, vocab_size=256,
                batch_size=32, train_size=16_000)
  c.model.update(cell='deltanet', hidden_size=64, num_layers=2,
                 block='residual', short_conv=4, num_heads=4, chunk_size=16)
  c.train.update(learning_rate=0.002, num_epochs=8, log_every_steps=50)
  return c
