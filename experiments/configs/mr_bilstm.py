"""BiLSTM with attention pooling on MR (movie-review polarity), 10-fold CV.

Command:  python launch.py --preset=mr_bilstm
Expected: mean test accuracy over the 10 folds 78.2% (std 1.4; folds 75.1 to
79.7), measured; about 20 minutes for the ten folds on 2 CPU cores.
"""

from rnn_jax.experiments import classify

EXPERIMENT = 'classify'


def get_config():
  """Kim (2014)'s protocol: his tokenisation, 10 fixed folds, the reported
  number is the mean test accuracy over the folds (each fold also holds out
  10% of its training part as valid). A smaller LSTM than sst2_bilstm keeps
  the ten runs within 30 minutes on two CPU cores."""
  c = classify.Classification().get_config()
  c.data.name = 'mr'
  c.data.tokenizer = 'kim'
  c.data.cv_folds = 10
  c.data.batch_size = 50
  c.model.hidden_size = 128
  c.model.mlp_size = 128
  c.train.num_epochs = 4
  c.train.eval_every_epochs = 2
  return c
