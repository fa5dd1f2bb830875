"""RNN against GRU against LSTM, everything else equal.

Commands: python launch.py --experiment=lm --ablation=cell
          python launch.py --experiment=classify --ablation=cell
          python launch.py --experiment=tag --ablation=cell
"""

BASES = {'lm': ('timemachine_gru', {}),
         'classify': ('trec_bilstm', {}),
         'tag': ('ud_english_pos_bilstm', {})}
GRID = {'model.cell': ['rnn', 'gru', 'lstm']}
