"""Reference solution of Notre Dame CSE 30124 HW04 (nd-hw04): the notebook's graded definitions.

``hw04.py`` holds them; ``hw04.ipynb`` (the reference submission) is built from it with the notebook's own
top-level cells by ``python -m reference.nd_hw04.make_notebook``; the checkpoints ``scratch_ffn.pt``, ``ffn.pt``
and ``cnn.pt`` by ``python -m reference.nd_hw04.train``.
Measured on the hidden holdout set (2 CPUs shared with other jobs, load ~10): scratch NeuralNetwork 784-512-47,
40 epochs of SGD: 0.755 (947 s); torch FFN 784-256-128-47, 15 epochs of Adam: 0.746 (391 s); torch CNN
(conv 32, conv 64, fc 128), 8 epochs: 0.803 (668 s). The grader asks for 0.75, 0.70 and 0.80.
"""
