"""How far back the gradient reaches: BPTT length T = 5, 10, 35, 100.

Command: python launch.py --experiment=lm --ablation=num_steps
"""

BASES = {'lm': ('timemachine_rnn', {})}
GRID = {'data.num_steps': [5, 10, 35, 100]}
