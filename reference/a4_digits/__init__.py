"""Reference solution of "Assignment 4" (a4-digits): ClassifierNeuralNet with an MLP and a CNN classnet
on sklearn's 8x8 digits.

``assignment4.py`` is the notebook's code (definitions only); ``assignment4.ipynb`` is built from it by
``python -m reference.a4_digits.make_notebook``; the checkpoints by ``python -m reference.a4_digits.train``.
Measured (seed 4, 2 shared CPUs): MLP 209 epochs, test error 0.078 (94 s); CNN 174 epochs, test error 0.058
(211 s). The grader asks for at most 0.10 and 0.08.
"""
