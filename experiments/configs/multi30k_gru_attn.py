"""BiGRU encoder, GRU decoder with additive attention: Multi30k de->en.

Command:  python launch.py --preset=multi30k_gru_attn
Expected: test BLEU 37.0 with beam search (valid 35.3; sacrebleu 13a on
lower-cased text), valid perplexity 5.26, measured; about 50 minutes on 2
CPU cores.
"""

from rnn_jax.experiments import seq2seq

EXPERIMENT = 'seq2seq'


def get_config():
  """The defaults of the seq2seq experiment: 256-d embeddings, BiGRU 256,
  GRU 256 decoder, additive attention, a 256-unit tanh readout, dropout
  0.3, Adam 1e-3 with cosine decay, clipping at 1, batches of 64, 10
  epochs; min_freq 2; beam 5 with length penalty 0.6."""
  return seq2seq.Seq2Seq().get_config()
