"""Reading the sentence one way or both ways.

Commands: python launch.py --experiment=classify --ablation=bidirectional
          python launch.py --experiment=tag --ablation=bidirectional
"""

BASES = {'classify': ('trec_bilstm', {}),
         'tag': ('ud_english_pos_bilstm', {})}
GRID = {'model.bidirectional': [False, True]}
