"""RNN (tanh, and ReLU from the identity: IRNN) against GRU against LSTM,
their layer-normalised forms and the linear recurrences (minGRU, minLSTM,
LRU, RG-LRU), everything else equal.

The tag runs train 15 epochs instead of the preset's 50 (about 4 minutes each
on the 2-core CPU), so the whole ablation fits a sitting.

Commands: python launch.py --experiment=lm --ablation=cell
          python launch.py --experiment=classify --ablation=cell
          python launch.py --experiment=tag --ablation=cell
"""

BASES = {'lm': ('timemachine_gru', {}),
         'classify': ('trec_bilstm', {}),
         'tag': ('ud_english_pos_bilstm', {'train.num_epochs': 15})}
GRID = {'model.cell': ['rnn', 'irnn', 'gru', 'lstm', 'gru_ln', 'lstm_ln', 'mingru',
                       'minlstm', 'lru', 'rglru']}
