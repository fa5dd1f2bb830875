"""scan_simple_lstm's model on SCAN's length split.

Command:  python launch.py --preset=scan_length_lstm
Expected: test exact match 10.2% (valid, drawn from train's lengths:
98.9%), measured; about 10 minutes on 2 CPU cores.
"""

from rnn_jax.experiments.configs import scan_simple_lstm

EXPERIMENT = 'seq2seq'


def get_config():
  """Train on action sequences of up to 22 actions, test on 24 to 48: Lake
  & Baroni report 13.8% exact match for their best model. 8 epochs instead
  of 15, to keep the run near 15 minutes. Decoding may run to 64 tokens."""
  c = scan_simple_lstm.get_config()
  c.data.name = 'scan/length'
  c.train.num_epochs = 8
  c.decode.max_length = 64
  return c
