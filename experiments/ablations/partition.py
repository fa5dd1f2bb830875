"""Sequential partitioning (state carried across batches) against random.

Sequential batches continue each other's text, so the final state of one
batch starts the next (truncated BPTT); random batches start from zero.
Command: python launch.py --experiment=lm --ablation=partition
"""

BASES = {'lm': ('timemachine_rnn', {})}
GRID = {'data.partition': ['sequential', 'random']}
