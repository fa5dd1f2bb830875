"""A search for the main job: learning rate, dropout, width and clipping of
the lecture's RNN on The Time Machine, 24 trials of Optuna's TPE sampler,
the median pruner stopping trials that fall behind.

Command: python launch.py --sweep=lm_search --sweep_parallel=2
Every trial trains as the timemachine_rnn preset does (40 epochs of SGD,
evaluated every 5) with its own four values; the objective is the final
valid perplexity. The study is <workdir>/study.journal: rerunning the
command after an interruption continues it, and optuna-dashboard shows it.
"""

from rnn_jax.search import Choice, LogUniform, Uniform

BASES = {'lm': ('timemachine_rnn', {})}
SPACE = {'train.learning_rate': LogUniform(0.1, 8.0),
         'model.dropout': Uniform(0.0, 0.5),
         'model.hidden_size': Choice([128, 256, 512]),
         'train.clip_norm': LogUniform(0.1, 10.0)}
TRIALS = 24
OBJECTIVE = 'valid/perplexity'
