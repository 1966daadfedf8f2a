"""Check params are typed and validated when a spec loads; a spec that cannot be graded with is a grading error
that says what to fix and is not retried, never an exception out of grade_submission."""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from grader import engine
from grader.api import grade_submission
from grader.assignments import InvalidSpec, list_assignments, load_assignment, spec
from grader.judge import script
from grader.judge.kinds import KINDS
from grader.judge.params import PARAMS, STEP_COMMON, STEP_KEYS, Params, parse_params
from grader.result import GradeResult, Status
from grader.settings import GraderSettings
from tests.conftest import make_zip, reference_file

REAL = load_assignment("rpz-cnn").path
CMU = load_assignment("cmu-16720-hw5").path
ACCURACY = """[checks.params]
module = "pytorch_cnn"
class = "MyNet"
file = "model.pt"
fn_module = "pytorch_cnn"
fn = "classify"
threshold = 0.75
batch = 500
"""
BROKEN = {  # what a spec author gets wrong, each in a copy of a real spec (rpz-cnn's unless it says)
    "unknown kind": ('kind = "torch.accuracy"\ntarget = "MyNet"', 'kind = "torch.acuracy"\ntarget = "MyNet"',
                     "check 'pytorch_cnn.MyNet.accuracy' (kind 'torch.acuracy'): unknown kind 'torch.acuracy' (known: "
                     "batches.partition,"),
    "misspelt key": (ACCURACY, ACCURACY.replace("threshold", "treshold"),
                     "check 'pytorch_cnn.MyNet.accuracy' (kind 'torch.accuracy'): params.threshold: missing; "
                     "params.treshold: unknown key"),
    "wrong type": (ACCURACY, ACCURACY.replace("batch = 500", 'batch = "500"'),
                   "check 'pytorch_cnn.MyNet.accuracy' (kind 'torch.accuracy'): params.batch: Input should be a "
                   "valid integer (got '500')"),
    "nested key": ('{ layer = "ReLU" },', '{ layer = "ReLU", size = { input_dim = 5 } },',
                   "check 'numpy_nn.network' (kind 'network'): params.layers[1].size: unknown key"),
    "undescribed layer": ('{ layer = "Sigmoid" },\n]', '{ layer = "Sigmoidal" },\n]',
                          "check 'numpy_nn.network' (kind 'network'): params.layers[3].layer: no [layers.Sigmoidal] "
                          "in this spec (described: Linear, ReLU, SE, Sigmoid)"),
    "step key": ('{ np_load = "q3_weights.npz", as = "params" }', '{ np_load = "q3_weights.npz", ass = "params" }',
                 "check 'q3.accuracy' (kind 'predictions'): params.steps[0]: unknown key(s) ass in a np_load step",
                 CMU),
}


@pytest.fixture
def spec_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """write(old, new, real=REAL): a copy of a real spec with `old` replaced by `new`, in a temporary file the engine
    then loads its assignment from (through the same parse_spec as load_assignment)."""
    folder = tmp_path / "specs"
    folder.mkdir()

    def write(old: str, new: str, real: Path = REAL) -> Path:
        text = real.read_text()
        assert text.count(old) == 1, old
        path = folder / real.name
        path.write_text(text.replace(old, new))
        monkeypatch.setattr(engine, "load_assignment",
                            lambda name, dirs=None: spec.parse_spec(tomllib.loads(path.read_text()), path=path))
        return path

    return write


def test_every_kind_has_a_params_model_and_every_spec_validates() -> None:
    assert set(PARAMS) == set(KINDS)
    assert len(list_assignments()) >= 5
    for name in list_assignments():
        for check in load_assignment(name).checks:
            assert check.kind in KINDS, (name, check.id)


def test_steps_may_hold_every_key_the_script_reads() -> None:
    """The step keys params lets through cover what grader.judge.script reads from a step (a key it reads that
    params refused would make a spec that uses it fail to load)."""
    source = "".join(inspect.getsource(f) for f in (script.Script.step, script.Script._step, script.Script._kept_args))
    read = {k for group in re.findall(r'\bs\["(\w+)"\]|\bs\.get\("(\w+)"|"(\w+)" in s\b', source) for k in group if k}
    allowed = set(STEP_KEYS) | STEP_COMMON | set().union(*STEP_KEYS.values())
    assert len(read) > 20 and read <= allowed, read - allowed
    steps = [{"np_load": "w.npz", "ass": "w"}, {"call": "f", "new": "g"}, {"eval": "net", "owner": "n", "as": "x"}]
    with pytest.raises(ValueError, match=r"steps\[0\]: unknown key\(s\) ass in a np_load step; params.steps\[1\]: a "
                                         r"step is exactly one of call, new, .* \(this one: call, new\)$"):
        parse_params("predictions", {"steps": steps, "threshold": 0.5})


def test_params_are_typed_with_the_defaults_the_kinds_used() -> None:
    cnn = load_assignment("rpz-cnn")
    acc = cnn.check("pytorch_cnn.MyNet.accuracy").params
    assert isinstance(acc, Params) and acc.class_ == "MyNet" and acc.threshold == 0.75 and acc.batch == 500
    assert acc.metric is None and acc.datasets[0].weight == 1.0 and acc.datasets[0].dither is None
    net = cnn.check("numpy_nn.network").params
    assert net.lr == 0.1 and [item.layer for item in net.layers] == ["Linear", "ReLU", "Linear", "Sigmoid"]
    cmu = load_assignment("cmu-16720-hw5")
    assert cmu.check("nn.get_random_batches").params.near_equal is True
    q3 = cmu.check("q3.accuracy").params
    assert q3.threshold == 0.60 and q3.course_threshold == 0.75 and q3.report == "accuracy"
    fn = next(c.params for c in cmu.checks if c.kind == "function")
    assert fn.rtol == 1e-5 and fn.atol == 1e-7 and fn.dtype is False


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_bad_spec_fails_to_load_naming_assignment_check_kind_and_key(case: str, tmp_path: Path) -> None:
    old, new, words, *real = BROKEN[case]
    real_path = real[0] if real else REAL
    text = real_path.read_text()
    assert text.count(old) == 1
    path = tmp_path / real_path.name
    path.write_text(text.replace(old, new))
    with pytest.raises(InvalidSpec) as err:
        spec.parse_spec(tomllib.loads(path.read_text()), path=path)
    assert str(err.value).startswith(f"assignment '{'cmu-16720-hw5' if real else 'rpz-cnn'}', {words}")


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_grade_submission_gives_a_deterministic_error_for_a_bad_spec(case: str, spec_dir, tmp_path: Path,
                                                                      fast_settings: GraderSettings) -> None:
    old, new, words, *real = BROKEN[case]
    name = "cmu-16720-hw5" if real else "rpz-cnn"
    spec_dir(old, new, *real)
    z = make_zip(tmp_path / "sub.zip", {"numpy_nn.py": reference_file("numpy_nn.py")})
    result = grade_submission(zip_path=z, assignment=name, settings=fast_settings)
    assert result.status is Status.ERROR and result.deterministic and not result.checks
    assert f"The spec of assignment '{name}' is invalid" in result.message and words in result.message
    assert "not the student's fault" in result.message
    again = GradeResult.from_dict(result.to_dict())  # what the worker posts and the web app reads
    assert again.deterministic and again.to_dict()["deterministic"] is True


def test_a_spec_the_kind_cannot_plan_is_a_deterministic_error(spec_dir, tmp_path: Path,
                                                              fast_settings: GraderSettings) -> None:
    """Params that validate but that the kind cannot use (a layer's sizes without a constructor size): planning
    fails, and the grading comes back as an error about the spec instead of raising."""
    spec_dir("{ layer = \"Linear\", sizes = { input_dim = 6, output_dim = 5 } },",
             "{ layer = \"Linear\", sizes = { input_dim = 6 } },")
    z = make_zip(tmp_path / "sub.zip", {"numpy_nn.py": reference_file("numpy_nn.py")})
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings, only=["numpy_nn.network"])
    assert result.status is Status.ERROR and result.deterministic
    assert "cannot plan check 'numpy_nn.network' (kind 'network')" in result.message
    assert "'output_dim'" in result.message and "not the student's fault" in result.message


def test_other_errors_stay_retried() -> None:
    err = GradeResult.error(assignment="rpz-cnn", message="sandbox broke")
    assert not err.deterministic and "deterministic" not in err.to_dict()
    assert not GradeResult.from_dict(err.to_dict()).deterministic


def test_notebook_cells_are_typed() -> None:
    cell = {"forward": ["x", {"linspace": [-1, 1, 6], "shape": [2, 3]}], "expect": [[0.5]]}
    p = parse_params("layer.forward", {"layer": "L", "cases": [{"cells": [cell], "arrays": {"x": [[1.0, 2.0]]}}]})
    assert p.cases[0].cells[0].method == "forward" and p.decimal == 6 and p.cases[0].sizes is None
    with pytest.raises(ValueError, match=r"^params.cases\[0\].cells\[0\].forward\[0\].linspace.linspace: linspace = "
                                         r"\[start, stop, num\] takes a whole number num$"):
        parse_params("layer.forward", {"layer": "L", "cases": [{"cells": [{"forward": [{"linspace": [0, 1, 2.5]}]}]}]})
    with pytest.raises(ValueError, match=r"params.cases\[0\].cells\[0\]: a cell calls exactly one of forward"):
        parse_params("layer.backward", {"layer": "L", "cases": [{"cells": [{"forward": [], "backward": []}]}]})
    with pytest.raises(ValueError, match=r"^params.cases\[0\].cells\[0\].expect.number: Input should be a valid number "
                                         r"\(got 'y'\); params.cases\[0\].cells\[0\].attrs.a.number: .*\(got True\)$"):
        parse_params("layer.backward", {"layer": "L", "cases": [{"cells": [{"backward": [], "expect": "y",
                                                                            "attrs": {"a": True}}]}]})
