"""Hierarchical BiLSTM encoder, LSTM decoder with attention: the 20 bAbI
tasks (1k).

Command:  python launch.py --preset=babi_lstm
Expected: mean test exact match over the 20 tasks 65.9% (Weston et al.'s
LSTM: 49.2%), measured; 53 minutes on 2 CPU cores shared with another run
(about 2,115 steps at 0.76 s alone). Per task (test %):
 1: 56.6   2: 43.9   3: 47.8   4: 75.6   5: 75.9   6: 82.8   7: 79.0
 8: 76.4   9: 81.3  10: 73.3  11: 72.8  12: 77.4  13: 93.7  14: 48.3
15: 30.5  16: 49.9  17: 57.9  18: 91.1  19:  7.4  20: 95.4
The flat encoder (`--config.model.hierarchical=false`, the story as one
sequence): 61.2%, task 1 50.8%, 17 minutes. The same hierarchical model
trained on task 1 of the 10k set alone answers all of its test questions.
"""

from experiments import seq2seq

EXPERIMENT = 'seq2seq'


def get_config():
  """One model for all 20 tasks of the 1k set, trained jointly (20,000
  questions, 10% held out as valid); exact match reported per task. The
  source is the story's last 20 statements and the question, read as
  statements (models.Seq2Seq, hierarchical); the answer (one word, or
  several for tasks 8 and 19) is decoded greedily."""
  c = seq2seq.get_config()
  c.data.name = 'babi'
  c.data.min_freq = 1
  c.data.max_source_lines = 20
  c.data.batch_size = 128
  c.data.eval_batch_size = 256
  c.data.bucket_width = 16
  c.model.update(embed_size=64, encoder_cell='lstm', encoder_hidden_size=128,
                 decoder_cell='lstm', hidden_size=128, attention='additive',
                 readout_size=0, dropout=0.3, hierarchical=True)
  c.train.update(learning_rate=3e-3, num_epochs=15, eval_every_epochs=5)
  c.decode.update(method='greedy', bleu=False, max_length=8, num_heatmaps=2)
  return c
