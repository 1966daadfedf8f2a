"""a4-digits: the reference notebook, the spec."""

from __future__ import annotations

import pytest

from grader.assignments import load_assignment
from tests.test_assignment_helpers import assert_notebook_in_sync


def test_reference_notebook_is_built_from_the_module() -> None:
    assert_notebook_in_sync("a4_digits", "assignment4.ipynb")


def test_spec() -> None:
    spec = load_assignment("a4-digits")
    assert spec.files == ("assignment4.ipynb", "classifier_mlp.pt", "classifier_cnn.pt")
    assert spec.max_score == 2
    assert "weights_only" in spec.page and "make_mlp()" in spec.page



def test_mutants_quote_the_reference_notebook() -> None:
    """Every `find` string of mutants.toml still occurs in the reference file it edits."""
    import tomllib

    from grader.assignments.spec import ASSIGNMENTS_DIR

    folder = ASSIGNMENTS_DIR / "a4_digits"
    mutants = tomllib.loads((folder / "mutants.toml").read_text())["mutants"]
    files = set(load_assignment("a4-digits").files)
    for mutant in mutants:
        if "replace" in mutant:
            assert mutant["replace"]["find"] in (folder / "reference" / mutant["replace"]["file"]).read_text(), mutant["name"]
        if "swap" in mutant:
            assert {mutant["swap"]["file"], mutant["swap"]["with"]} <= files, mutant["name"]


def test_student_style_notebook_is_what_students_hand_in() -> None:
    """The 'colab' notebook keeps what real notebooks carry and the converter must accept: a `from __future__`
    import at the top of a later cell, `!pip` and `%matplotlib` lines, the Drive mount, top-level training, plots
    as outputs, and Dropout/BatchNorm in the classnets; every cell compiles on its own as Jupyter compiles it,
    though the cells pasted into one module would not (the __future__ import is not at the top of the file)."""
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    from grader.assignments.spec import ASSIGNMENTS_DIR

    path = ASSIGNMENTS_DIR / "a4_digits" / "students" / "colab" / "assignment4.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    first_lines = [c.splitlines()[0] for c in cells if c.strip()]
    assert "from __future__ import annotations" in first_lines[1:]
    text = "\n".join(cells)
    for needle in ("!pip install", "%matplotlib inline", "drive.mount(", "for name in names:", "nn.Dropout(",
                   "nn.BatchNorm1d(", "nn.BatchNorm2d(", "def make_mlp()", "def make_cnn()",
                   "torch.save(model.state_dict()"):
        assert needle in text, needle
    assert any(o.output_type == "display_data" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    transform = TransformerManager().transform_cell
    for i, source in enumerate(cells):
        compile(transform(source), f"<cell {i + 1}>", "exec")
    with pytest.raises(SyntaxError, match="__future__"):
        compile("\n".join(transform(c) for c in cells), "<one module>", "exec")


def test_student_style_checkpoints_fit_the_notebooks_classnets() -> None:
    """The checkpoints train.py left load strictly (weights_only) into the notebook's own make_mlp()/make_cnn()."""
    import ast

    import nbformat
    import torch
    from IPython.core.inputtransformer2 import TransformerManager

    from grader.assignments.spec import ASSIGNMENTS_DIR

    folder = ASSIGNMENTS_DIR / "a4_digits" / "students" / "colab"
    ns: dict[str, object] = {}
    transform = TransformerManager().transform_cell
    for cell in nbformat.read(folder / "assignment4.ipynb", as_version=4).cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(transform(cell.source))
        tree.body = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Assign)
                     and not (isinstance(n, ast.Assign) and isinstance(n.value, ast.Call))
                     or (isinstance(n, ast.Import | ast.ImportFrom) and "colab" not in ast.unparse(n))]
        exec(compile(tree, "<cell>", "exec"), ns)  # definitions only, like the grader
    for name, make in (("classifier_mlp", "make_mlp"), ("classifier_cnn", "make_cnn")):
        model = ns["ClassifierNeuralNet"](ns[make]())  # type: ignore[operator]
        model.load_state_dict(torch.load(folder / f"{name}.pt", weights_only=True), strict=True)
        assert (folder / f"{name}.pt").stat().st_size < 1 * 2**20
