"""Reference solution of CMU 16-720 HW5 (cmu-16720-hw5): python/nn.py and the Q3.1 network's weights.

``q3_weights.npz`` is trained by ``python -m reference.cmu_16720_hw5.train`` the way the handout's run_q3.py
trains (np.random.seed(1), 50 epochs, batch 100, learning rate 2e-3, 64 hidden units, batches drawn once) on
EMNIST-balanced-small's TRAINING split in NIST36's conventions (A-Z then 0-9, dark ink on white in [0, 1],
stored transposed); the hidden stand-in is the TEST split. Measured: validation 0.701, hidden stand-in 0.697
(about a minute). ``calibrate.py`` trains seeds 1-5 the same way and records their hidden accuracies, which the
spec's bar (0.60) is calibrated on (calibration.json). ``students/handout_loops/`` is a student-style solution
(loops, ``from util import *``, the handout's run_q3.py on .mat stand-ins written by ``nist36_mats.py``).
"""
