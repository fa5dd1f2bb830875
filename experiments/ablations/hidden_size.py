"""Width of the recurrent state.

Commands: python launch.py --experiment=lm --ablation=hidden_size
          python launch.py --experiment=classify --ablation=hidden_size
"""

BASES = {'lm': ('timemachine_rnn', {}),
         'classify': ('trec_bilstm', {})}
GRID = {'model.hidden_size': [64, 128, 256, 512]}
