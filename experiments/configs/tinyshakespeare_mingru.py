"""A 3-layer mingru language model on Tiny Shakespeare, character level, in
pre-norm residual blocks with an MLP (model.block=residual), the kind of
stack the linear-recurrence papers build their language models from.

Command:  python launch.py --preset=tinyshakespeare_mingru
Expected: valid perplexity 4.29, test 4.88 (1.457 / 1.585 nats per char;
2.10 / 2.29 bits), measured; 21 minutes alone on 2 CPU cores (46 while
tinyshakespeare_minlstm trained on the same cores; the same metrics).
"""

from experiments import lm

EXPERIMENT = 'lm'


def get_config():
  c = lm.get_config()
  c.model.update(cell='mingru', hidden_size=256, num_layers=3, embed_size=64,
                 dropout=0.2, block='residual', mlp_ratio=4)
  c.data.update(name='tinyshakespeare', level='char', preprocess='none',
                batch_size=32, num_steps=100, eval_batch_size=10)
  c.train.update(optimizer='adam', learning_rate=0.002, clip_norm=1.0,
                 schedule='cosine', warmup_steps=200, num_epochs=10,
                 eval_every_epochs=1, log_every_steps=100)
  c.generate.update(prefix='ROMEO:', num_tokens=200, temperature=0.8)
  return c
