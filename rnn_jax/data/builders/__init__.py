"""TensorFlow-free TFDS builders, one per dataset, and `load`.

Every builder knows each raw file's canonical URL and sha256. It reads the
file from the local mirror named by $RNN_JAX_RAW_DATA (laid out like
shared/data) when that variable is set, and otherwise downloads it once
into $RNN_JAX_DATA_DIR/downloads; either
way the checksum is verified before anything is prepared. Prepared datasets
(array_record files) go to $RNN_JAX_DATA_DIR, by default
~/.cache/rnn_jax/tfds, and are read back through `tfds` data sources.
"""

from __future__ import annotations

from rnn_jax.data.builders.base import data_dir
from rnn_jax.data.builders.base import load
from rnn_jax.data.builders.base import load_lines
from rnn_jax.data.builders.base import read_text
from rnn_jax.data.builders.base import RawFile
from rnn_jax.data.builders.base import register
from rnn_jax.data.builders.base import registered

# Importing a builder module registers it.
from rnn_jax.data.builders import classification  # pylint: disable=unused-import
from rnn_jax.data.builders import lm_corpora  # pylint: disable=unused-import
from rnn_jax.data.builders import seq2seq  # pylint: disable=unused-import
from rnn_jax.data.builders import tagging  # pylint: disable=unused-import
