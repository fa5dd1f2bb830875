"""Encoder-decoder without attention (d2l's seq2seq) against additive
(Bahdanau) and multiplicative (Luong) attention.

Four epochs of fra_eng_gru's ten (about 7 minutes a run on the 2-core CPU).

Command: python launch.py --experiment=seq2seq --ablation=attention
"""

BASES = {'seq2seq': ('fra_eng_gru', {'train.num_epochs': 4})}
GRID = {'model.attention': ['none', 'additive', 'multiplicative']}
