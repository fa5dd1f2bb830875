"""examples/char_rnn.py, the lecture's model written out with rnn_jax's
parts: it learns, and its step agrees with the library's language model."""

import math
import os
import sys

import jax
import numpy as np

from conftest import REPO, requires_raw
from rnn_jax.experiments import lm

sys.path.insert(0, os.path.join(REPO, 'examples'))
import char_rnn  # pylint: disable=g-import-not-at-top,wrong-import-position


@requires_raw('timemachine/timemachine.txt')
def test_char_rnn_learns_and_generates(capsys):
  loss = char_rnn.main(steps=60, hidden_size=64)
  assert loss < math.log(28) - 0.5   # well below a uniform guess
  generated = capsys.readouterr().out.splitlines()[-1]
  assert generated.startswith('time traveller')
  assert len(generated) == len('time traveller') + 50


def test_char_rnn_forward_is_the_library_language_model():
  """The example's one-hot RNN and readout, with the library model's
  parameters, give the library model's logits and state."""
  config = lm.LanguageModelling().get_config()
  config.model.hidden_size = 16
  model = lm.make_model(config, vocab_size=11)
  tokens = np.random.default_rng(0).integers(0, 11, (3, 7)).astype(np.int32)
  params = model.init(jax.random.PRNGKey(0), tokens,
                      model.initial_carry(3))['params']
  want, want_carry = model.apply({'params': params}, tokens,
                                 model.initial_carry(3))
  cell = char_rnn.cells.make_cell('rnn', 16)
  ours = {'cell': params['stack']['layer0'],
          'W_ho': params['readout']['kernel'],
          'b_o': params['readout']['bias']}
  got, got_carry = char_rnn.forward(ours, cell, tokens,
                                    cell.initial_carry(3))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(jax.tree.leaves(got_carry)[0],
                             jax.tree.leaves(want_carry)[0], rtol=1e-5,
                             atol=1e-5)
