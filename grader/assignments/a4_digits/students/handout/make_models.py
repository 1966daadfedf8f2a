"""Write the two whole-model files of this student-style reference, as the handout's training() saves them:
``torch.save(model, name + ".model")`` with name ``classifier_mlp_M_256`` / ``classifier_cnn_M_256_kernels_32``.

The notebook here is the colab style's notebook written the handout's way (classnets inline in the experiment loop,
whole models saved), with the same architectures, so the weights are the colab style's trained ones
(../colab/classifier_*.pt, trained by ../colab/train.py): this script rebuilds each model from this notebook's own
classes, run as ``__main__`` as in Colab (so that the pickles name ``__main__.ClassifierNeuralNet``), loads those
weights and saves the whole model.

    .venv/bin/python grader/assignments/a4_digits/students/handout/make_models.py
"""

from pathlib import Path

import torch

from grader.assignments import load_assignment
from grader.notebook import convert

HERE = Path(__file__).resolve().parent
FILES = {"mlp": "classifier_mlp_M_256.model", "cnn": "classifier_cnn_M_256_kernels_32.model"}


def main() -> None:
    spec = load_assignment("a4-digits")
    module = convert((HERE / "assignment4.ipynb").read_bytes(), name="assignment4.ipynb", factories=spec.factories)
    exec(compile(module.source, "assignment4", "exec"), globals())  # noqa: S102 - our own notebook, as Colab runs it
    for net, out in FILES.items():
        model = globals()["ClassifierNeuralNet"](globals()[f"make_{net}"]())
        model.load_state_dict(torch.load(HERE.parent / "colab" / f"classifier_{net}.pt", weights_only=True))
        torch.save(model, HERE / out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
