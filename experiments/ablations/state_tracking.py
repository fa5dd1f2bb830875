"""State tracking: parity (the modular_sum task with m = 2: at every step,
the number of ones so far mod 2) trained at length 64 and tested at 64 and
256, for every family -- the lecture's RNN, the LSTM, the minGRU, the LRU,
and the mLSTM, GLA, DeltaNet, Gated DeltaNet and Mamba-2 -- with the
mqar_deltanet preset's model and training (two pre-norm residual blocks of
64 channels, 1,000 batches of 32), everything else equal.

A recurrence whose state transitions only decay (eigenvalues in [0, 1]: the
diagonal linear cells, GLA, Mamba-2, and the delta rule with its step
size in (0, 1)) cannot flip a bit at each one and hold it at any length
(Grazzi et al. 2025); a nonlinear cell can. The table gives
test/accuracy@L per length; plots/state_tracking.png draws them, one line
per cell.

Command: python launch.py --experiment=memory --ablation=state_tracking
"""

from rnn_jax.experiments.ablations import extrapolation

LENGTHS = (64, 256)
BASES = {'memory': ('mqar_deltanet', {
    'data.name': 'modular_sum', 'data.modulus': 2, 'data.delay': LENGTHS[0],
    'data.eval_lengths': ','.join(map(str, LENGTHS))})}
ZIP = extrapolation.ZIP   # every family; the matrix cells with convolutions
METRICS = tuple(f'test/accuracy@{n}' for n in LENGTHS) + ('state_size',)


def plot(rows, workdir):
  extrapolation.plot_lengths(rows, workdir, LENGTHS, 'state_tracking.png',
                             f'test length (trained at {LENGTHS[0]})',
                             'parity test accuracy', 'state tracking')
