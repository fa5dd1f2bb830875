"""Models over the recurrent core, one file per model. Batch-major at this
edge: tokens [B, T]."""

from rnn_jax.models.classifier import READOUTS, Classifier
from rnn_jax.models.common import init_params, word_dropout
from rnn_jax.models.language_model import LanguageModel
from rnn_jax.models.memory import MemoryModel
from rnn_jax.models.seq2seq import ATTENTIONS, Seq2Seq, decode
from rnn_jax.models.seq2seq import log_likelihood, seq2seq_logits
from rnn_jax.models.tagger import Tagger
