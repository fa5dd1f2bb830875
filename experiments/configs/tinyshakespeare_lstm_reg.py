"""tinyshakespeare_lstm at twice the width, with variational dropout, EMA
weights and the epoch selected on valid.

Command:  python launch.py --preset=tinyshakespeare_lstm_reg
Expected: valid loss 1.341, test 1.483 nats per char (perplexity 3.82 /
4.41; the last epoch selected), measured; 37 minutes on 2 CPU cores. On
nanoGPT's split, whose validation text is our valid and test together,
that is 1.412 (nanoGPT's baby GPT: 1.4697). tinyshakespeare_lstm (2x256,
the minGRU/minLSTM presets' comparison) stays as it was: at 0.8M
parameters it underfits and the regularisers gave it nothing (README,
Regularisation); this one has 3.3M.
"""

from rnn_jax.experiments.configs import tinyshakespeare_lstm

EXPERIMENT = 'lm'


def get_config():
  c = tinyshakespeare_lstm.get_config()
  c.model.update(hidden_size=512, dropout=0.3, variational=True)
  c.train.update(num_epochs=15, average='ema', select_by='valid/perplexity')
  return c
