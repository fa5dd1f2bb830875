"""Encoder-decoder without attention (d2l's seq2seq) against additive
(Bahdanau) and multiplicative (Luong) attention.

Command: python launch.py --experiment=seq2seq --ablation=attention
"""

BASES = {'seq2seq': ('fra_eng_gru', {})}
GRID = {'model.attention': ['none', 'additive', 'multiplicative']}
