"""The state is what makes an RNN: the lecture's RNN against itself without W_hh.

With `model.recurrent=false` the cell is h_t = tanh(W_hx x_t + b_h): an MLP
that sees only the current character, a bigram model at best.
Command: python launch.py --experiment=lm --ablation=recurrence
"""

BASES = {'lm': ('timemachine_rnn', {})}
GRID = {'model.recurrent': [True, False]}
