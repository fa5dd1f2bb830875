"""Lake & Baroni (2018)'s best SCAN model on the simple split.

Command:  python launch.py --preset=scan_simple_lstm
Expected: not yet measured.
"""

from experiments import seq2seq

EXPERIMENT = 'seq2seq'


def get_config():
  """2 x 200 LSTM encoder and decoder without attention, dropout 0.5,
  Adam 1e-3, clipping at 5, teacher forcing 0.5. Lake & Baroni train 100k
  steps of one example; here 10 epochs of batches of 32 (4.7k steps, 150k
  examples). Decoded greedily."""
  c = seq2seq.get_config()
  c.data.name = 'scan'
  c.data.tokenizer = 'whitespace'
  c.data.lowercase = False
  c.data.min_freq = 1
  c.data.batch_size = 32
  c.data.eval_batch_size = 256
  c.data.bucket_width = 16   # fewer distinct batch shapes to compile
  c.model.update(embed_size=200, encoder_cell='lstm', encoder_hidden_size=200,
                 encoder_layers=2, bidirectional=False, decoder_cell='lstm',
                 hidden_size=200, decoder_layers=2, attention='none',
                 readout_size=0, dropout=0.5)
  c.train.update(clip_norm=5.0, teacher_forcing=0.5, num_epochs=10,
                 schedule='constant', eval_every_epochs=5)
  c.decode.update(method='greedy', bleu=False, max_length=64)
  return c
