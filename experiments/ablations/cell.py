"""RNN (tanh, and ReLU from the identity: IRNN) against GRU against LSTM,
their layer-normalised forms, the linear recurrences (minGRU, minLSTM,
LRU, RG-LRU) and the matrix-memory ones (mLSTM, GLA, DeltaNet, Gated
DeltaNet, Mamba-2; 4 heads), everything else equal.

The tag runs train 15 epochs instead of the preset's 50 (about 4 minutes each
on the 2-core CPU), so the whole ablation fits a sitting.

Commands: python launch.py --experiment=lm --ablation=cell
          python launch.py --experiment=classify --ablation=cell
          python launch.py --experiment=tag --ablation=cell
"""

BASES = {'lm': ('timemachine_gru', {}),
         'classify': ('trec_bilstm', {}),
         # 24 character units instead of 25: 4 heads divide them.
         'tag': ('ud_english_pos_bilstm', {'train.num_epochs': 15,
                                           'model.char_hidden_size': 24})}
GRID = {'model.cell': ['rnn', 'irnn', 'gru', 'lstm', 'gru_ln', 'lstm_ln', 'mingru',
                       'minlstm', 'lru', 'rglru', 'mlstm', 'gla', 'deltanet',
                       'gated_deltanet', 'mamba2']}
