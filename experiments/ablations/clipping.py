"""Gradient clipping: theta = none (0), 1, 5 for the lecture's RNN at SGD rate 0.5.

Backprop through 35 steps multiplies 35 Jacobians; without clipping the
first large gradient throws the RNN out of its working range. The curves
show the global gradient norm (before clipping) and the loss every 10 steps.
Command: python launch.py --experiment=lm --ablation=clipping
"""

BASES = {'lm': ('timemachine_rnn', {'train.learning_rate': 0.5,
                                    'train.num_epochs': 10,
                                    'train.log_every_steps': 10})}
GRID = {'train.clip_norm': [0.0, 1.0, 5.0]}
CURVES = ('train/grad_norm', 'train/loss')
