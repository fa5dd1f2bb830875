"""A 3-layer minlstm language model on Tiny Shakespeare, character level, in
pre-norm residual blocks with an MLP (model.block=residual), the kind of
stack the linear-recurrence papers build their language models from.

Command:  python launch.py --preset=tinyshakespeare_minlstm
Expected: valid perplexity 4.26, test 4.94 (1.449 / 1.597 nats per char;
2.09 / 2.30 bits), measured; 47 minutes while tinyshakespeare_mingru
trained on the same 2 CPU cores (tinyshakespeare_mingru: 21 alone).
"""

from experiments import lm

EXPERIMENT = 'lm'


def get_config():
  c = lm.get_config()
  c.model.update(cell='minlstm', hidden_size=256, num_layers=3, embed_size=64,
                 dropout=0.2, block='residual', mlp_ratio=4)
  c.data.update(name='tinyshakespeare', level='char', preprocess='none',
                batch_size=32, num_steps=100, eval_batch_size=10)
  c.train.update(optimizer='adam', learning_rate=0.002, clip_norm=1.0,
                 schedule='cosine', warmup_steps=200, num_epochs=10,
                 eval_every_epochs=1, log_every_steps=100)
  c.generate.update(prefix='ROMEO:', num_tokens=200, temperature=0.8)
  return c
