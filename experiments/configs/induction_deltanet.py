"""Induction heads (Olsson et al. 2022) as the Mamba paper sets them: 16
tokens, trained at length 256, tested at 256 to 4096 (length
extrapolation), by mqar_deltanet's DeltaNet (two pre-norm residual blocks
of 64 channels in one head with short convolutions), Adam at 2e-3 with
warm-up and cosine decay, 1,000 batches of 32 fresh sequences.

Command:  python launch.py --experiment=memory --preset=induction_deltanet
Expected: test accuracy 97.1% at length 256 (valid 97.0%; 66.8% at step
500), 96.5% at 512, 97.0% at 1024, 94.6% at 2048 and 84.0% at 4096 (chance
7.1%), measured; 25 minutes on 2 CPU cores shared with the test suite. The
same model in 4 heads of 16 channels learnt length 256 sooner (100% at step
500) but held only to 512: 97.9% at 512, 46.3% at 1024, 13.2% at 2048 and
9.7% at 4096.
"""

from rnn_jax.experiments.configs import mqar_deltanet

EXPERIMENT = 'memory'


def get_config():
  c = mqar_deltanet.get_config()
  c.data.update(name='induction', vocab_size=16, valid_size=500,
                eval_lengths='256,512,1024,2048,4096')
  c.train.update(schedule='cosine', warmup_steps=100, num_epochs=2)
  return c
