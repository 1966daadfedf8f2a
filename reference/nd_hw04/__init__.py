"""Reference solution of Notre Dame CSE 30124 HW04 (nd-hw04): the notebook's graded definitions.

``hw04.py`` holds them; ``hw04.ipynb`` (the reference submission) is built from it with the notebook's own
top-level cells by ``python -m reference.nd_hw04.make_notebook``; the checkpoints ``scratch_ffn.pt``, ``ffn.pt``
and ``cnn.pt`` by ``python -m reference.nd_hw04.train``.
"""
