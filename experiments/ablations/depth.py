"""Stacked layers: 1, 2 or 3 recurrent layers.

Commands: python launch.py --experiment=classify --ablation=depth
          python launch.py --experiment=tag --ablation=depth
"""

BASES = {'classify': ('trec_bilstm', {}),
         'tag': ('ud_english_pos_bilstm', {})}
GRID = {'model.num_layers': [1, 2, 3]}
