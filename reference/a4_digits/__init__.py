"""Reference solution of "Assignment 4" (a4-digits): ClassifierNeuralNet with an MLP and a CNN classnet
on sklearn's 8x8 digits.

``assignment4.py`` is the notebook's code (definitions only); ``assignment4.ipynb`` is built from it by
``python -m reference.a4_digits.make_notebook``; the checkpoints by ``python -m reference.a4_digits.train``.
"""
