"""An example sweep: learning rate x clipping threshold for the main job.

Command: python launch.py --sweep=lm_learning_rate [--sweep_parallel=2]
"""

BASES = {'lm': ('timemachine_rnn', {'train.num_epochs': 10})}
GRID = {'train.learning_rate': [0.25, 0.5, 1.0, 2.0],
        'train.clip_norm': [1.0, 5.0]}
