"""Notebook submissions: NAME.ipynb becomes a module of its definitions; top-level code never runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.archive import Unpacked
from grader.notebook import NotebookModule, SourceMap, convert, notebook_cells, with_notebook_modules
from grader.result import CheckStatus, Status
from tests.conftest import check


def make_notebook(*cells: str | tuple[str, str]) -> bytes:
    """nbformat 4 JSON; a cell is code text, or (cell_type, text)."""
    out = []
    for c in cells:
        kind, text = c if isinstance(c, tuple) else ("code", c)
        out.append({"cell_type": kind, "metadata": {}, "source": text.splitlines(keepends=True),
                    **({"outputs": [], "execution_count": 1} if kind == "code" else {})})
    return json.dumps({"cells": out, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


COLAB = make_notebook(
    ("markdown", "# Homework\n`sigmoid` below"),
    "%pip install torch torchvision\n!wget https://example.com/data.zip\n!unzip data.zip",
    "import numpy as np\nfrom google.colab import drive\ndrive.mount('/content/gdrive')\nEPS = 1e-7\nSIZES = (784, 128, 10)",
    "def sigmoid(x):\n    return 1 / (1 + np.exp(-x))\n\nX_train = np.loadtxt('sample_data/mnist_train_small.csv')\n"
    "for epoch in range(100):\n    print(epoch)",
    "%%bash\nrm -rf /",
    "%%time\nclass Model:\n    scale = EPS\n    def f(self):\n        return sigmoid(0.0)\n",
    "if True:\n    !nvidia-smi\n    LR = 0.1\nmodel = Model()\nmodel.f()",
    "def broken(:\n    pass",
    "import os\nos._exit(3)\nwhile True:\n    pass",
)


def test_conversion_keeps_definitions_only() -> None:
    conv = convert(COLAB, name="hw.ipynb")
    assert conv.bad_cells == (7,)
    ns: dict[str, object] = {}
    exec(compile(conv.source, "hw.py", "exec"), ns)  # would hang or exit if top-level code were kept
    assert {"np", "sigmoid", "Model", "EPS", "SIZES", "os"} <= set(ns)
    assert "drive" not in ns or ns["drive"] is not None  # the Colab import is guarded
    for gone in ("X_train", "model", "LR", "epoch", "broken"):
        assert gone not in ns
    assert ns["Model"]().f() == 0.5  # type: ignore[operator]
    assert "rm -rf" not in conv.source and "pip install" not in conv.source and "nvidia-smi" not in conv.source
    assert conv.kept == 7


def test_every_kept_line_knows_its_cell_and_line() -> None:
    nb = make_notebook("import numpy as np", "%%time\nX = 1; print('top-level call after a semicolon')\n\n"
                       "class Model:\n    def f(self):\n        return np.zeros(2)")
    conv = convert(nb, name="hw.ipynb")
    lines = conv.source.splitlines()
    assert len(conv.origins) == len(lines)
    located = {lines[i].strip(): o for i, o in enumerate(conv.origins) if o is not None}
    assert located == {"import numpy as np": (1, 1), "X = 1": (2, 2), "class Model:": (2, 4),
                       "def f(self):": (2, 5), "return np.zeros(2)": (2, 6)}
    assert "print" not in conv.source  # only the kept statement of a line, not its neighbour after ';'
    assert 'LABEL = "é"\n' in convert(make_notebook('LABEL = "é"; train()'), name="hw.ipynb").source  # byte offsets


def test_messages_name_the_notebook_and_cell() -> None:
    conv = convert(make_notebook("import math", "def f(x):\n    return math.log(x)"), name="hw5.ipynb")
    body = conv.source.splitlines().index("    return math.log(x)") + 1
    notebooks = SourceMap((NotebookModule(notebook="hw5.ipynb", module="hw5.py", origins=conv.origins),))
    msg = f"f(0) raised ValueError: math domain error (hw5.py line {body}, in f)"
    assert notebooks.student_text(msg) == "f(0) raised ValueError: math domain error (hw5.ipynb, code cell 2, line 2, in f)"
    assert notebooks.student_text("importing hw5.py failed") == "importing hw5.ipynb failed"
    assert notebooks.student_text("hw5.py does not define softmax") == "hw5.ipynb does not define softmax"
    assert notebooks.student_text("my_hw5.py and hw5.pyc stay") == "my_hw5.py and hw5.pyc stay"
    assert SourceMap().student_text("importing hw5.py failed") == "importing hw5.py failed"


def test_unreadable_notebooks_are_reported() -> None:
    with pytest.raises(ValueError, match="invalid JSON"):
        notebook_cells(b"{not json")
    with pytest.raises(ValueError, match="no list of cells"):
        notebook_cells(json.dumps({"worksheets": []}).encode())
    assert notebook_cells(make_notebook(("markdown", "x"), "a = 1")) == ["a = 1"]


def test_with_notebook_modules_writes_the_module(tmp_path: Path) -> None:
    (tmp_path / "hw.ipynb").write_bytes(COLAB)
    (tmp_path / "bad.ipynb").write_bytes(b"garbage")
    out, notebooks = with_notebook_modules(Unpacked(root=tmp_path, found=frozenset({"hw.ipynb", "bad.ipynb"}),
                                                    notices=()))
    assert out.found == {"hw.ipynb", "hw.py", "bad.ipynb", "bad.py"}
    assert {(m.notebook, m.module) for m in notebooks.modules} == {("hw.ipynb", "hw.py"), ("bad.ipynb", "bad.py")}
    assert "def sigmoid" in (tmp_path / "hw.py").read_text()
    assert "bad.ipynb could not be read" in (tmp_path / "bad.py").read_text()
    assert any("code cell(s) 7" in n for n in out.notices)


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_colab_notebook_is_graded_in_the_sandbox(grade) -> None:
    hw5 = make_notebook(
        "!pip install something\nimport numpy as np",
        "def sigmoid(x):\n    return 1 / (1 + np.exp(-x))",
        "import os\nos._exit(3)",  # top-level code: would kill the harness if it ran
        "while True:\n    pass",
    )
    result = grade({"hw5.ipynb": hw5}, assignment="gt-hw5")
    assert result.status is Status.GRADED
    assert check(result, "hw5.sigmoid").status is CheckStatus.PASSED
    softmax = check(result, "hw5.softmax")
    assert softmax.status is CheckStatus.FAILED and "does not define softmax" in softmax.message
    assert "mlp_weights.npz is missing" in check(result, "hw5.MLP.accuracy").message


@pytest.mark.sandbox
@pytest.mark.slow
def test_an_unreadable_notebook_fails_with_a_reason(grade) -> None:
    result = grade({"hw5.ipynb": b"\x00\x01 not a notebook"}, assignment="gt-hw5")
    assert result.status is Status.GRADED and result.score == 0
    assert "hw5.ipynb could not be read" in check(result, "hw5.sigmoid").message


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_broken_cell_is_reported_with_the_notebook_and_cell(grade) -> None:
    broken_class = make_notebook(
        "import numpy as np",
        "def sigmoid(x):\n    return 1 / (1 + np.exp(-x))",
        "class Config:\n    rate = undefined_name  # runs on import\n",
    )
    result = grade({"hw5.ipynb": broken_class}, assignment="gt-hw5")
    assert result.status is Status.GRADED
    msg = check(result, "hw5.sigmoid").message
    assert msg.startswith("importing hw5.ipynb failed: NameError"), msg
    assert "(hw5.ipynb, code cell 3, line 2, in Config)" in msg and "hw5.py" not in msg

    raising = make_notebook(
        "import numpy as np",
        "def sigmoid(x):\n    x = np.asarray(x)\n    raise RuntimeError('not done yet')",
    )
    msg = check(grade({"hw5.ipynb": raising}, assignment="gt-hw5"), "hw5.sigmoid").message
    assert "RuntimeError: not done yet (hw5.ipynb, code cell 2, line 3, in sigmoid)" in msg, msg
