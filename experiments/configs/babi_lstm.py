"""BiLSTM encoder, LSTM decoder with attention: the 20 bAbI tasks (1k).

Command:  python launch.py --preset=babi_lstm
Expected: not yet measured.
"""

from experiments import seq2seq

EXPERIMENT = 'seq2seq'


def get_config():
  """One model for all 20 tasks of the 1k set, trained jointly (20,000
  questions, 10% held out as valid); exact match reported per task. The
  source is the story's last 20 statements and the question, as one
  sequence; the answer (one word, or several for tasks 8 and 19) is decoded
  greedily."""
  c = seq2seq.get_config()
  c.data.name = 'babi'
  c.data.min_freq = 1
  c.data.max_source_lines = 20
  c.data.batch_size = 128
  c.data.eval_batch_size = 256
  c.data.bucket_width = 16
  c.model.update(embed_size=64, encoder_cell='lstm', encoder_hidden_size=128,
                 decoder_cell='lstm', hidden_size=128, attention='additive',
                 readout_size=0, dropout=0.3)
  c.train.update(learning_rate=3e-3, num_epochs=15, eval_every_epochs=5)
  c.decode.update(method='greedy', bleu=False, max_length=8, num_heatmaps=2)
  return c
