"""Induction heads (Olsson et al. 2022) as the Mamba paper sets them: 16
tokens, trained at length 256, tested at 256 to 4096 (length
extrapolation), by mqar_deltanet's DeltaNet made twice as wide (two pre-norm
residual blocks of 128 channels in one head with short convolutions), Adam
at 2e-3 with warm-up and cosine decay, 1,000 batches of 32 fresh sequences.

Command:  python launch.py --experiment=memory --preset=induction_deltanet
Expected: test accuracy 100% at lengths 256, 512, 1024 and 2048, and
98.2% at 4096 (chance 7.1%; valid 100% at step 500), measured; 23 minutes
on 2 CPU cores with light work beside it. At mqar_deltanet's width, one
head of 64 (--config.model.hidden_size=64) learnt more slowly (66.8% at
step 500) and held less: 97.1%, 96.5%, 97.0%, 94.6% and 84.0% (25 minutes,
shared). Four heads of 16 held only to 512: 100%, 97.9%, 46.3%, 13.2% and
9.7%.
"""

from rnn_jax.experiments.configs import mqar_deltanet

EXPERIMENT = 'memory'


def get_config():
  c = mqar_deltanet.get_config()
  c.data.update(name='induction', vocab_size=16, valid_size=500,
                eval_lengths='256,512,1024,2048,4096')
  c.model.update(hidden_size=128)
  c.train.update(schedule='cosine', warmup_steps=100, num_epochs=2)
  return c
