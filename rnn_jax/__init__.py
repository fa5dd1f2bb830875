"""rnn_jax: recurrent networks in JAX, from the lecture's equations up."""

from rnn_jax.api import evaluate
from rnn_jax.api import get_config
from rnn_jax.api import load
from rnn_jax.api import sweep
from rnn_jax.api import train
from rnn_jax import cells
from rnn_jax import crf
from rnn_jax import decoding
from rnn_jax import distributed
from rnn_jax import host
from rnn_jax import layers
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax import optim
from rnn_jax import recurrence
from rnn_jax.errors import InputError

__version__ = '0.1.0'
