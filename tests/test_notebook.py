"""Notebook submissions: NAME.ipynb becomes a module of its definitions; top-level code never runs."""

from __future__ import annotations

import asyncio
import json
import re
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

from grader.archive import Unpacked
from grader.notebook import (
    Conversion,
    NotebookModule,
    SourceMap,
    convert,
    notebook_cells,
    with_notebook_modules,
)
from grader.result import CheckStatus, Status
from tests.conftest import check

REFERENCE = Path(__file__).resolve().parent.parent / "grader" / "assignments"


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
    # The Colab import is guarded: `drive` is the grader's stand-in, and using it names the import and its cell.
    assert type(ns["drive"]).__name__ == "__grader_missing__"
    with pytest.raises(ModuleNotFoundError, match=r"google\.colab\.drive cannot be imported in the grader "
                                                  r"\(hw\.ipynb, code cell 2, line 2\)"):
        ns["drive"].mount("/content/gdrive")  # type: ignore[attr-defined]
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
        notebook_cells(json.dumps({"nbformat": 4, "worksheets": []}).encode())
    with pytest.raises(ValueError, match="not UTF-8"):
        notebook_cells(b'{"cells": ["\xff"]}')
    for version in (5, "4", True, None):
        with pytest.raises(ValueError, match="nbformat can read"):
            notebook_cells(json.dumps({"nbformat": version, "cells": []}).encode())
    assert notebook_cells(make_notebook(("markdown", "x"), "a = 1")) == ["a = 1"]
    assert notebook_cells(b"\xef\xbb\xbf" + make_notebook("a = 1")) == ["a = 1"]  # a byte order mark is fine


def test_with_notebook_modules_writes_the_module(tmp_path: Path) -> None:
    (tmp_path / "hw.ipynb").write_bytes(COLAB)
    (tmp_path / "bad.ipynb").write_bytes(b"garbage")
    out, notebooks = with_notebook_modules(Unpacked(root=tmp_path, found=frozenset({"hw.ipynb", "bad.ipynb"}),
                                                    notices=()))
    assert out.found == {"hw.ipynb", "hw.py", "bad.ipynb", "bad.py"}
    assert {(m.notebook, m.module) for m in notebooks.modules} == {("hw.ipynb", "hw.py"), ("bad.ipynb", "bad.py")}
    assert "def sigmoid" in (tmp_path / "hw.py").read_text()
    assert "bad.ipynb could not be read" in (tmp_path / "bad.py").read_text()
    assert out.notices == ("hw.ipynb, code cell 7, line 1: SyntaxError: invalid syntax; the cell was left out",)


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


# --- what Jupyter accepts in a cell (issue 10, item 3) -----------------------------------------------------------


def run_module(conv: Conversion, module: str = "hw") -> dict[str, Any]:
    """Execute a generated module as the sandbox imports it (file `module`.py); its namespace."""
    ns: dict[str, Any] = {"__name__": module}
    exec(compile(conv.source, f"{module}.py", "exec", dont_inherit=True), ns)
    return ns


def failure_place(conv: Conversion, call: Callable[[], object], module: str = "hw") -> str:
    """Where `call` fails, as the student reads it: the message naming the notebook's cell and line."""
    with pytest.raises(Exception) as info:
        call()
    line = [f.lineno for f in traceback.extract_tb(info.value.__traceback__) if f.filename == f"{module}.py"][-1]
    nb = NotebookModule(notebook=f"{module}.ipynb", module=f"{module}.py", origins=conv.origins)
    return SourceMap((nb,)).student_text(f"{info.value} ({module}.py line {line})")


def test_from_future_in_the_first_cell_is_kept_at_the_top() -> None:
    nb = make_notebook("from __future__ import annotations\nimport numpy as np\n\ndef f(x: np.ndarray) -> Later:\n"
                       "    return x", "class Later:\n    pass")
    conv = convert(nb, name="hw.ipynb")
    assert conv.bad_cells == () and conv.notices == ()
    ns = run_module(conv)  # an annotation naming a later class is fine: annotations are not evaluated
    assert ns["f"].__annotations__ == {"x": "np.ndarray", "return": "Later"}
    assert "try:\n    from __future__" not in conv.source  # never wrapped: that is a SyntaxError


def test_from_future_in_a_later_cell_moves_to_the_top_with_a_notice() -> None:
    nb = make_notebook("import math\nLIMIT = 3", "# types\nfrom __future__ import annotations\n"
                       "def g(x: Undefined) -> Undefined:\n    return math.sqrt(x)",
                       "from __future__ import annotations, division")  # again: one notice is enough
    conv = convert(nb, name="hw.ipynb")
    ns = run_module(conv)
    assert ns["g"](4.0) == 2.0 and ns["g"].__annotations__ == {"x": "Undefined", "return": "Undefined"}
    assert conv.notices == ("hw.ipynb, code cell 2: `from __future__ import annotations` was moved to the top of "
                            "the notebook, so it applies to the cells before it too (in Jupyter it applies from "
                            "that cell on)",)
    located = {t.strip(): o for t, o in zip(conv.source.splitlines(), conv.origins, strict=True) if o}
    assert located["from __future__ import annotations"] == (2, 2)
    assert located["def g(x: Undefined) -> Undefined:"] == (2, 3)


def test_from_future_after_other_code_of_its_cell_fails_that_cell_as_in_jupyter() -> None:
    conv = convert(make_notebook("import os\nfrom __future__ import annotations\ndef h(): pass", "def k(): pass"),
                   name="hw.ipynb")
    assert conv.bad_cells == (1,)
    assert conv.notices == ("hw.ipynb, code cell 1, line 2: SyntaxError: from __future__ imports must occur at the "
                            "beginning of the file; the cell was left out",)
    assert set(run_module(conv)) >= {"k"} and "h" not in run_module(conv)


def test_shell_output_assignment_keeps_the_rest_of_the_cell() -> None:
    conv = convert(make_notebook("files = !ls\ncount = %sx ls | wc -l\ndef f(x):\n    return 1 / x"), name="hw.ipynb")
    ns = run_module(conv)
    assert ns["f"](1) == 1 and "files" not in ns and "count" not in ns
    assert failure_place(conv, lambda: ns["f"](0)) == "division by zero (hw.ipynb, code cell 1, line 4)"


def test_percent_and_bang_inside_strings_stay_text() -> None:
    doc = 'REPORT = """accuracy: 97%\n%matplotlib inline\n!rm -rf /\nwhat?"""'
    conv = convert(make_notebook(doc + "\ndef fmt(x):\n    '''50% of !x'''\n    return '%d%%' % x"), name="hw.ipynb")
    ns = run_module(conv)
    assert ns["REPORT"] == "accuracy: 97%\n%matplotlib inline\n!rm -rf /\nwhat?"
    assert ns["fmt"](5) == "5%" and ns["fmt"].__doc__ == "50% of !x"


def test_cell_magics_that_run_in_the_notebook_keep_their_python() -> None:
    conv = convert(make_notebook("%%capture out --no-stderr\nimport math\ndef a():\n    return 1",
                                 "\n%%time\n%%capture\ndef b():\n    return 2",
                                 "%%prun -q\ndef c():\n    return 3",
                                 "%%bash\necho hi\ndef no_bash(): pass",
                                 "%%writefile helpers.py\ndef no_file(): pass",
                                 "%%timeit\ndef no_timeit(): pass",  # IPython runs its body inside a function
                                 "%%html\n<b>hi</b>"), name="hw.ipynb")
    ns = run_module(conv)
    assert ns["a"]() == 1 and ns["b"]() == 2 and ns["c"]() == 3 and "math" in ns
    assert not {"no_bash", "no_file", "no_timeit"} & set(ns) and conv.bad_cells == () and conv.notices == ()
    located = {t: o for t, o in zip(conv.source.splitlines(), conv.origins, strict=True) if o}
    assert located["def b():"] == (2, 4) and located["    return 2"] == (2, 5)


def test_line_magics_help_and_shell_lines_are_skipped() -> None:
    conv = convert(make_notebook("%load_ext autoreload\n%autoreload 2\n%matplotlib inline\nnp.sum?\nnp.sum??\n?\n"
                                 "!pip install -q torch\n!!ls\n%cd /content\nimport numpy as np\ndef k(x):\n"
                                 "    return np.sum(x) / 0.0"), name="hw.ipynb")
    ns = run_module(conv)
    assert conv.kept == 2 and conv.bad_cells == ()
    with np.errstate(divide="ignore"):
        assert ns["k"]([1]) == np.inf
    assert failure_place(conv, lambda: ns["k"]("x")).endswith("(hw.ipynb, code cell 1, line 12)")


def test_lines_after_transformed_and_multi_line_statements_keep_their_place() -> None:
    cell = ("!pip install \\\n    torch \\\n    torchvision\n"  # one shell command over three lines
            "SIZES = (784,\n         128)\n"
            "def net(x,\n        y):\n"
            "    !nvidia-smi \\\n        --query-gpu=name\n"  # continued inside the def: the same piece
            "    z = (x +\n"
            "         y)\n"
            "    return z / 0")
    conv = convert(make_notebook("import os", cell), name="hw.ipynb")
    ns = run_module(conv)
    assert ns["SIZES"] == (784, 128)
    located = {t.strip(): o for t, o in zip(conv.source.splitlines(), conv.origins, strict=True) if o}
    assert located["SIZES = (784,"] == (2, 4) and located["128)"] == (2, 5) and located["y):"] == (2, 7)
    assert located["get_ipython().system('nvidia-smi          --query-gpu=name')"] == (2, 8)
    assert located["return z / 0"] == (2, 12)
    assert failure_place(conv, lambda: ns["net"](1, 2)) == (
        "shell (!) and magic (%) lines do not run in the grader (hw.ipynb, code cell 2, line 8)")


def test_a_function_using_a_shell_line_fails_only_when_called() -> None:
    conv = convert(make_notebook("def download():\n    files = !ls data\n    return files\n\ndef ok():\n"
                                 "    return 'google.colab' in str(get_ipython())"), name="hw.ipynb")
    ns = run_module(conv)
    assert ns["ok"]() is False  # the usual "am I on Colab?" test works
    assert failure_place(conv, ns["download"]) == (
        "shell (!) and magic (%) lines do not run in the grader (hw.ipynb, code cell 1, line 2)")


def test_top_level_await_is_skipped_and_async_functions_are_kept() -> None:
    conv = convert(make_notebook("import asyncio\nx = await asyncio.sleep(0)\nasync for y in z:\n    pass\n"
                                 "async def fetch():\n    await asyncio.sleep(0)\n    return 3"), name="hw.ipynb")
    assert conv.bad_cells == ()
    ns = run_module(conv)
    assert asyncio.run(ns["fetch"]()) == 3 and "x" not in ns


def test_cells_jupyter_cannot_run_are_left_out_with_the_reason() -> None:
    conv = convert(make_notebook("return 1\ndef inside(): pass", "def f(a, a): pass", "def fine(): pass",
                                 "x = 1\n  y = 2", "print('a')\n\tif x:\n        pass", "'unterminated",
                                 "x = 1\0", "from __future__ import barry_as_FLUFL\ndef g(): return 1 <> 2"),
                   name="hw.ipynb")
    assert run_module(conv).keys() >= {"fine"} and conv.bad_cells == (1, 2, 4, 5, 6, 7, 8)
    assert conv.notices[0] == "hw.ipynb, code cell 1, line 1: SyntaxError: 'return' outside function; the cell was left out"
    assert conv.notices[1].startswith("hw.ipynb, code cell 2, line 1: SyntaxError: duplicate argument 'a'")
    assert conv.notices[2].startswith("hw.ipynb, code cell 4, line 2: IndentationError: unexpected indent")
    assert all("the cell was left out" in n for n in conv.notices)


def test_indented_cells_and_pasted_prompts_run_as_in_jupyter() -> None:
    conv = convert(make_notebook("\n\n    def indented():\n        return 3", ">>> def prompt():\n...     return 4",
                                 "In [3]: def ipy():\n   ...:     return 5"), name="hw.ipynb")
    ns = run_module(conv)
    assert (ns["indented"](), ns["prompt"](), ns["ipy"]()) == (3, 4, 5)
    located = {t: o for t, o in zip(conv.source.splitlines(), conv.origins, strict=True) if o}
    assert located["def indented():"] == (1, 3) and located["    return 3"] == (1, 4)


def test_a_missing_package_fails_where_it_is_used_naming_the_import() -> None:
    conv = convert(make_notebook("import numpy as np\nfrom google.colab import drive, files as f2\n"
                                 "import no_such_pkg.sub\nfrom no_such_pkg import *",
                                 "def mount():\n    drive.mount('/content/gdrive')\n\ndef plain():\n    return np.ones(1)"),
                   name="hw.ipynb")
    ns = run_module(conv)
    assert ns["plain"]()[0] == 1.0 and ns["np"] is np
    assert re.fullmatch(r"google.colab.drive cannot be imported in the grader \(hw.ipynb, code cell 1, line 2\): "
                        r"No module named 'google(.colab)?' \(hw.ipynb, code cell 2, line 2\)",
                        failure_place(conv, ns["mount"]))
    assert "no_such_pkg cannot be imported" in str(ns["no_such_pkg"])
    with pytest.raises(ModuleNotFoundError, match=r"^no_such_pkg.nn cannot be imported in the grader \(hw.ipynb, code cell 1, line 1\)"):
        convert_and_run("from no_such_pkg import nn\nclass Net(nn.Module):\n    pass")
    assert not hasattr(ns["f2"], "__wrapped__")  # probing tools see an attribute error, not a crash


def convert_and_run(*cells: str) -> dict[str, Any]:
    return run_module(convert(make_notebook(*cells), name="hw.ipynb"))


def v3_notebook(v4: bytes) -> bytes:
    """The same notebook in nbformat 3 (worksheets, `input`), written by nbformat's own downgrade."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # make_notebook's cells have no ids
        nb = nbformat.reads(v4.decode(), as_version=4)
        return nbformat.writes(nbformat.convert(nb, 3)).encode()


def test_nbformat_3_notebooks_are_upgraded() -> None:
    v3 = v3_notebook(COLAB)
    assert json.loads(v3)["nbformat"] == 3 and "worksheets" in json.loads(v3)
    assert convert(v3, name="hw.ipynb").source == convert(COLAB, name="hw.ipynb").source
    v3_by_hand = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""}, "worksheets": [{"cells": [
        {"cell_type": "heading", "level": 1, "metadata": {}, "source": ["Homework"]},
        {"cell_type": "code", "collapsed": False, "input": ["%pylab inline\n", "def f():\n", "    return 7"],
         "language": "python", "metadata": {}, "outputs": [{"output_type": "stream", "stream": "stdout",
                                                             "text": ["x\n"]}], "prompt_number": 1}],
        "metadata": {}}]}
    assert run_module(convert(json.dumps(v3_by_hand).encode(), name="hw.ipynb"))["f"]() == 7


def test_the_reference_notebooks_convert_as_before() -> None:
    for path, kept in (("a4_digits/reference/assignment4.ipynb", 25), ("gt_hw5/reference/hw5.ipynb", 24),
                        ("nd_hw04/reference/hw04.ipynb", 23)):
        conv = convert((REFERENCE / path).read_bytes(), name=Path(path).name)
        assert (conv.kept, conv.bad_cells, conv.notices) == (kept, (), ()), path


@pytest.mark.sandbox
@pytest.mark.slow
def test_a4_digits_with_from_future_gets_full_marks(grade) -> None:
    nb = json.loads((REFERENCE / "a4_digits" / "reference" / "assignment4.ipynb").read_text())
    imports = next(c for c in nb["cells"] if c["cell_type"] == "code" and "import torch\n" in c["source"])
    imports["source"] = ["from __future__ import annotations\n", *imports["source"]]
    helper = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 1,
              "source": ["files = !ls\n", "def helper(x: torch.Tensor) -> torch.Tensor:\n", "    return x\n"]}
    nb["cells"].insert(nb["cells"].index(imports) + 1, helper)
    files = {"assignment4.ipynb": json.dumps(nb), **{f: (REFERENCE / "a4_digits" / "reference" / f).read_bytes()
                                                      for f in ("classifier_mlp.pt", "classifier_cnn.pt")}}
    result = grade(files, assignment="a4-digits")
    assert result.status is Status.GRADED
    assert result.score == result.max_score == 2, [(c.id, c.message) for c in result.checks]
    assert result.notices == ("assignment4.ipynb, code cell 3: `from __future__ import annotations` was moved to the "
                              "top of the notebook, so it applies to the cells before it too (in Jupyter it applies "
                              "from that cell on)",)


@pytest.mark.sandbox
@pytest.mark.slow
def test_an_nbformat_3_notebook_is_graded(grade) -> None:
    hw5 = v3_notebook((REFERENCE / "gt_hw5" / "reference" / "hw5.ipynb").read_bytes())
    result = grade({"hw5.ipynb": hw5, "mlp_weights.npz": (REFERENCE / "gt_hw5" / "reference" / "mlp_weights.npz").read_bytes()},
                   assignment="gt-hw5")
    assert result.status is Status.GRADED
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if c.points < c.max_points]


def test_constants_that_read_dropped_names_are_left_out() -> None:
    """gt-hw5's own template cells: `A = torch.tensor(...)` is top-level code (dropped), so a later
    `hadamard_AV = A * V` must go too, or importing the notebook fails with NameError; constants over kept names
    (imports, functions, other constants, builtins) stay."""
    conv = convert(make_notebook(
        "import numpy as np\nA = np.array([[1.0, 2.0], [3.0, 4.0]])\nV = np.ones((2, 2))\nhadamard_AV = A * V\n"
        "B = A.T",
        "N = 5\nM = N * 2\nDT = np.float32\nK: int = N\nBIG = len\n\ndef f(x):\n    return x * M\nG = f"), name="hw.ipynb")
    ns = run_module(conv)
    assert "hadamard_AV" not in ns and "B" not in ns and "A" not in ns
    assert ns["M"] == 10 and ns["DT"] is np.float32 and ns["K"] == 5 and ns["BIG"] is len and ns["G"](1) == 10
