"""d2l's GRU encoder-decoder on Tatoeba English -> French.

Command:  python launch.py --preset=fra_eng_gru
Expected: test BLEU 23.5 greedy (valid 22.7, valid perplexity 3.79),
measured; about 18 minutes on 2 CPU cores. d2l's
four examples: go . => va y aller. | i lost . => j'ai perdu. |
he's calm . => il est calme. | i'm home . => je suis chez moi.
"""

from rnn_jax.experiments import seq2seq

EXPERIMENT = 'seq2seq'


def get_config():
  """d2l's model (2-layer GRU encoder and decoder, 256 units, embeddings
  of 256, dropout 0.2, no attention: the encoder's final state is the
  context at every step) on the first 20,000 pairs (d2l uses 600), with
  10% carved off for valid and 10% for test. Greedy decoding, as d2l; the
  end of the run translates d2l's four examples."""
  c = seq2seq.Seq2Seq().get_config()
  c.data.name = 'fra_eng'
  c.data.max_examples = 20000
  c.model.update(encoder_layers=2, bidirectional=False, decoder_layers=2,
                 attention='none', readout_size=0, dropout=0.2)
  c.train.update(learning_rate=5e-3, num_epochs=10)
  c.decode.update(method='greedy',
                  examples="go .|i lost .|he's calm .|i'm home .")
  return c
