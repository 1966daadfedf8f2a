"""Reference solution of Georgia Tech ECE 4252 HW5 (gt-hw5): the notebook's graded definitions.

``hw5.py`` holds them; ``hw5.ipynb`` (the reference submission) is built from it with the notebook's own
top-level cells by ``python -m reference.gt_hw5.make_notebook``; ``mlp_weights.npz`` is trained by
``python -m reference.gt_hw5.train``.
Measured: L=1, N_l=16, 25 epochs on 18,000 MNIST training images: validation 0.936, hidden MNIST test 0.919
(16 s). The grader asks for at least 0.85.
"""
