"""Reference solution of CMU 16-720 HW5 (cmu-16720-hw5): python/nn.py and the Q3.1 network's weights.

``q3_weights.npz`` is trained by ``python -m reference.cmu_16720_hw5.train`` on the NIST36-like training set
built from EMNIST-balanced-small's training split (the test split is hidden data).
"""
