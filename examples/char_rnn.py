"""The lecture's character-level RNN language model, written out.

    h_t = tanh(W_hh h_{t-1} + W_hx x_t + b_h),    o_t = W_ho h_t + b_o

rnn_jax gives the parts (the cell, the scan, the loss, sampling); the model,
the batches, the clipped SGD update and the training loop are here, in the
order d2l builds them. `python launch.py --experiment=lm` trains the same
model through the library's own loop (with checkpoints, evaluation and logs).

    RNN_JAX_RAW_DATA=../shared/data python examples/char_rnn.py --steps=1000
"""

import argparse
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnn_jax import cells
from rnn_jax import decoding
from rnn_jax import metrics
from rnn_jax import recurrence
from rnn_jax.data import builders
from rnn_jax.data import pipelines


def load_corpus():
  """The Time Machine's training text as character ids, and the vocabulary
  (d2l's preprocessing: letters and spaces, lower case)."""
  lines = builders.load_lines('timemachine')['train']
  chars = pipelines.tokenize(lines, 'char', preprocess='d2l', eos=False)
  vocab = sorted(set(chars))
  return np.array([vocab.index(c) for c in chars], np.int32), vocab


def batches(ids, batch_size: int, num_steps: int):
  """Sequential partitioning: `batch_size` streams side by side, cut into
  windows of `num_steps`, so that batch k+1 continues batch k."""
  length = (len(ids) - 1) // batch_size
  xs = ids[:batch_size * length].reshape(batch_size, length)
  ys = ids[1:batch_size * length + 1].reshape(batch_size, length)
  for start in range(0, length - num_steps + 1, num_steps):
    yield xs[:, start:start + num_steps], ys[:, start:start + num_steps]


def init(rng, vocab_size: int, cell):
  """The cell's W_hx, W_hh, b_h (one-hot inputs: W_hx has a row per
  character) and the readout W_ho, b_o."""
  k1, k2 = jax.random.split(rng)
  scale = 1 / math.sqrt(cell.hidden_size)
  return {'cell': cell.init(k1, vocab_size),
          'W_ho': jax.random.normal(k2, (cell.hidden_size, vocab_size)) * scale,
          'b_o': jnp.zeros(vocab_size)}


def forward(params, cell, tokens, carry):
  """tokens [B, T] -> logits [B, T, V] and the state after them; the scan
  runs time-major over one-hot inputs given as ids."""
  carry, hs = recurrence.run(cell, params['cell'], tokens.T, carry=carry)
  return jnp.swapaxes(hs @ params['W_ho'] + params['b_o'], 0, 1), carry


@functools.partial(jax.jit, static_argnums=(1, 2))
def train_step(state, cell, tx, x, y):
  params, opt_state, carry = state

  def loss_fn(params):
    logits, new_carry = forward(params, cell, x, carry)
    nll, count = metrics.cross_entropy(logits, y)
    return nll / count, new_carry

  (loss, carry), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt_state = tx.update(grads, opt_state, params)  # clipped, then SGD
  params = optax.apply_updates(params, updates)
  # Truncated BPTT: the next batch starts from this state, its gradient
  # stops here.
  return (params, opt_state, jax.lax.stop_gradient(carry)), loss


def generate(params, cell, vocab, prefix: str, num_chars: int) -> str:
  """Warms the state up on `prefix`, then continues it greedily."""
  def step_fn(p, token, carry):   # one step: [B] ids -> [B, V] logits
    logits, carry = forward(p, cell, token[:, None], carry)
    return logits[:, 0], carry
  ids = decoding.generate(step_fn, params, jnp.asarray([[vocab.index(c)
                                                         for c in prefix]]),
                          cell.initial_carry(1), jax.random.PRNGKey(0),
                          num_tokens=num_chars)
  return prefix + ''.join(vocab[i] for i in np.asarray(ids[0]))


def main(steps: int, hidden_size: int = 256, batch_size: int = 32,
         num_steps: int = 35, learning_rate: float = 1.0) -> float:
  ids, vocab = load_corpus()
  cell = cells.make_cell('rnn', hidden_size)
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(learning_rate))
  params = init(jax.random.PRNGKey(0), len(vocab), cell)
  state = (params, tx.init(params), cell.initial_carry(batch_size))
  step, losses = 0, []
  while step < steps:
    for x, y in batches(ids, batch_size, num_steps):
      state, loss = train_step(state, cell, tx, x, y)
      losses.append(float(loss))
      step += 1
      if step % 100 == 0 or step == steps:
        print(f'step {step}: perplexity {math.exp(np.mean(losses)):.2f}')
        losses = []
      if step == steps:
        break
    state = (state[0], state[1], cell.initial_carry(batch_size))  # new epoch
  print(generate(state[0], cell, vocab, 'time traveller', 50))
  return float(loss)


if __name__ == '__main__':
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--steps', type=int, default=1000)
  main(parser.parse_args().steps)
