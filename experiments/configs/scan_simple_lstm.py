"""Lake & Baroni (2018)'s SCAN model, with attention, on the simple split.

Command:  python launch.py --preset=scan_simple_lstm
Expected: test exact match 99.98% (4,181 of 4,182; valid 99.94%), measured
(Lake & Baroni: 99.7%); about 24 minutes on 2 CPU cores.
"""

from rnn_jax.experiments import seq2seq

EXPERIMENT = 'seq2seq'


def get_config():
  """Lake & Baroni's overall-best model -- 2 x 200 LSTM encoder and decoder,
  dropout 0.5, Adam 1e-3, clipping at 5, teacher forcing 0.5 -- with
  additive attention added. They train 100k updates of one example; here
  15 epochs of batches of 32 (7k updates) with a cosine decay. Measured
  with fewer updates: without attention, 10 epochs of 32 at a constant
  rate reach 88.9% exact match; with attention, 10 epochs of 64 (2.4k
  updates) 82.9%. Decoded greedily."""
  c = seq2seq.Seq2Seq().get_config()
  c.data.name = 'scan'
  c.data.tokenizer = 'whitespace'
  c.data.lowercase = False
  c.data.min_freq = 1
  c.data.batch_size = 32
  c.data.eval_batch_size = 256
  c.data.bucket_width = 16   # fewer distinct batch shapes to compile
  c.model.update(embed_size=200, encoder_cell='lstm', encoder_hidden_size=200,
                 encoder_layers=2, bidirectional=False, decoder_cell='lstm',
                 hidden_size=200, decoder_layers=2, attention='additive',
                 readout_size=0, dropout=0.5)
  c.train.update(clip_norm=5.0, teacher_forcing=0.5, num_epochs=15,
                 eval_every_epochs=5)
  c.decode.update(method='greedy', bleu=False, max_length=64)
  return c
