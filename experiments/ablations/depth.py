"""Stacked layers: 1, 2 or 3 recurrent layers.

The tag runs train 15 epochs instead of the preset's 50 (about 4 minutes each
on the 2-core CPU), so the whole ablation fits a sitting.

Commands: python launch.py --experiment=classify --ablation=depth
          python launch.py --experiment=tag --ablation=depth
"""

BASES = {'classify': ('trec_bilstm', {}),
         'tag': ('ud_english_pos_bilstm', {'train.num_epochs': 15})}
GRID = {'model.num_layers': [1, 2, 3]}
