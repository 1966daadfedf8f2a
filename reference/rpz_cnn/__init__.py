"""Reference solution of the RPZ "Convolutional Neural Networks" assignment (rpz-cnn).

``numpy_nn.py`` and ``pytorch_cnn.py`` are the student-facing files; ``model.pt`` and ``finetuned.pt`` are
the trained checkpoints produced by ``python -m reference.rpz_cnn.train``.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
SUBMISSION_FILES = ("numpy_nn.py", "pytorch_cnn.py", "model.pt", "finetuned.pt")
