"""a4-digits graded the way the handout has students write it: classnets built inline in the experiment loop
(seed 004 lines 605-634), whole models saved by ``torch.save(model, name + ".model")`` under the names the
notebook gives them (seed lines 458, 585-587). The full-marks run of such a notebook is the "handout" student-style
reference (tests/test_selftest.py); these tests build the pieces and the failures."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest

from grader.archive import ArchiveLimits, unpack_submission
from grader.assignments import load_assignment
from grader.assignments.spec import Factory
from grader.notebook import convert
from grader.result import CheckStatus
from grader.selftest import student_styles
from tests.conftest import check, make_zip
from tests.test_notebook import make_notebook

FACTORIES = (Factory("make_mlp", "classnet", "classifier_mlp"), Factory("make_cnn", "classnet", "classifier_cnn"))
CONSTANTS = "import torch.nn as nn\nD = 64\nM = 256\nK = 10\nnum_kernels = 32\n"
LOOP = '''names = ["classifier_mlp", "classifier_cnn"]
for name in names:
    if name == "classifier_mlp":
        name = name + "_M_" + str(M)
    elif name == "classifier_cnn":
        name = name + "_M_" + str(M) + "_kernels_" + str(num_kernels)
    # MLP
    if name[0:14] == "classifier_mlp":
        # PLEASE FILL IN:
        classnet = nn.Sequential(
            nn.Linear(D, M),
            nn.Sigmoid(),  # hidden
            nn.Linear(M, K),
            nn.LogSoftmax(dim=1)

        )
        pass
    # CNN
    elif name[0:14] == "classifier_cnn":
        classnet = nn.Sequential(nn.Flatten(), nn.Linear(D, num_kernels), nn.Linear(num_kernels, K),
                                 nn.LogSoftmax(dim=1))
    model = classnet
'''


def _module(*cells: str) -> tuple[dict, tuple[str, ...]]:
    conv = convert(make_notebook(*cells), name="assignment4.ipynb", factories=FACTORIES)
    ns: dict = {}
    exec(compile(conv.source, "assignment4", "exec"), ns)  # noqa: S102 - a notebook built here
    return ns, conv.notices


def test_the_loops_branches_become_make_mlp_and_make_cnn_with_the_constants_of_that_point() -> None:
    # the handout sets M = 512 again for its second part (seed line 1004): the loop's M was 256
    ns, notices = _module(CONSTANTS, LOOP, "M = 512\nD = 3")
    mlp, cnn = ns["make_mlp"](), ns["make_cnn"]()
    assert [tuple(p.shape) for p in mlp.parameters()] == [(256, 64), (256,), (10, 256), (10,)]
    assert [tuple(p.shape) for p in cnn.parameters()] == [(32, 64), (32,), (10, 32), (10,)]
    assert ns["M"] == 512  # the module's own constants are what the notebook leaves them
    assert any("code cell 2, line 10: make_mlp() was made from the model this branch" in n for n in notices), notices
    assert any("code cell 2, line 20: make_cnn() was made" in n for n in notices), notices


def test_a_notebook_that_defines_make_mlp_keeps_its_own() -> None:
    own = "def make_mlp():\n    return nn.Sequential(nn.Linear(D, 7), nn.Linear(7, K), nn.LogSoftmax(dim=1))\n"
    ns, notices = _module(CONSTANTS, own, LOOP)
    assert [tuple(p.shape) for p in ns["make_mlp"]().parameters()][0] == (7, 64)
    assert "make_cnn" in ns and not any("make_mlp() was made" in n for n in notices)


def test_no_branch_no_factory() -> None:
    ns, notices = _module(CONSTANTS, "for name in ['a']:\n    if name == 'classifier':\n        classnet = 1\n")
    assert "make_mlp" not in ns and "make_cnn" not in ns and not notices


def test_a_branch_reading_a_loop_variable_fails_when_called_naming_it() -> None:
    """A classnet built from a name the loop computes cannot be made outside the loop: the call says which."""
    loop = LOOP.replace("nn.Linear(D, M),", "nn.Linear(D, hidden),")
    ns, _ = _module(CONSTANTS, loop)
    with pytest.raises(NameError, match="hidden"):
        ns["make_mlp"]()


def _zip(members: dict[str, bytes]) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def unpack(tmp_path: Path):
    spec = load_assignment("a4-digits")

    def run(members: dict[str, bytes]):
        z = tmp_path / f"s{len(list(tmp_path.glob('*.zip')))}.zip"
        z.write_bytes(_zip(members))
        dest = tmp_path / z.stem
        return unpack_submission(z, dest, expected=spec.files, aliases=spec.aliases, limits=ArchiveLimits())

    return run


def test_the_notebooks_own_file_names_are_graded_as_the_expected_ones(unpack) -> None:
    out = unpack({"hw/assignment4.ipynb": b"{}", "hw/classifier_mlp_M_256.model": b"mlp",
                  "hw/classifier_cnn_M_256_kernels_32.model": b"cnn"})
    assert out.found == {"assignment4.ipynb", "classifier_mlp.pt", "classifier_cnn.pt"}
    assert (out.root / "classifier_mlp.pt").read_bytes() == b"mlp"
    assert (out.root / "classifier_cnn.pt").read_bytes() == b"cnn"
    assert "'hw/classifier_mlp_M_256.model' was graded as classifier_mlp.pt." in out.notices


def test_the_expected_name_wins_and_two_candidates_are_refused(unpack) -> None:
    out = unpack({"assignment4.ipynb": b"{}", "classifier_mlp.pt": b"exact", "classifier_mlp_M_256.model": b"alias",
                  "classifier_cnn_a.model": b"a", "classifier_cnn_b.model": b"b"})
    assert (out.root / "classifier_mlp.pt").read_bytes() == b"exact"
    assert "classifier_cnn.pt" not in out.found
    assert any(n.startswith("Several files could be classifier_cnn.pt ('classifier_cnn_a.model', "
                            "'classifier_cnn_b.model')") for n in out.notices), out.notices


def test_an_alias_deep_in_a_folder_is_not_taken(unpack) -> None:
    out = unpack({"assignment4.ipynb": b"{}", "results/classifier_mlp_M_256/classifier_mlp_M_256.model": b"m"})
    assert "classifier_mlp.pt" not in out.found


# ----------------------------------------------------------------------------- real gradings


@pytest.fixture(scope="module")
def handout_files() -> dict[str, bytes]:
    return student_styles("a4-digits")["handout"]


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_whole_model_whose_class_the_notebook_lacks_fails_saying_so(tmp_path, fast_settings, handout_files):
    import torch

    from grader.api import grade_submission

    class Renamed(torch.nn.Module):  # saved from a notebook whose class had another name
        def __init__(self) -> None:
            super().__init__()
            self.classnet = torch.nn.Linear(64, 10)

    Renamed.__module__, Renamed.__qualname__ = "__main__", "MyClassifier"
    main = sys.modules["__main__"]
    main.MyClassifier = Renamed  # type: ignore[attr-defined]  # pickle checks it can find the class again
    try:
        buf = io.BytesIO()
        torch.save(Renamed(), buf)
    finally:
        del main.MyClassifier  # type: ignore[attr-defined]
    files = {**handout_files, "classifier_mlp_M_256.model": buf.getvalue()}
    z = make_zip(tmp_path / "s.zip", files)
    result = grade_submission(zip_path=z, assignment="a4-digits", settings=fast_settings.with_(limit_overrides={}),
                              only=["assignment4.mlp.error", "assignment4.cnn.error"])
    c = check(result, "assignment4.mlp.error")
    assert c.status is CheckStatus.FAILED
    assert "classifier_mlp.pt is a whole model whose class MyClassifier your notebook does not define" in c.message
    assert check(result, "assignment4.cnn.error").status is CheckStatus.PASSED
