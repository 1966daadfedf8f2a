"""Unit tests of the trusted side: wire protocol strictness, comparison messages, hidden-set shuffling, spec."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from grader.assignments import load_assignment
from grader.harness import wire
from grader.judge.compare import compare_array
from grader.judge.context import Inputs
from grader.judge.torch_models import TorchAccuracy
from grader.result import CheckResult, CheckStatus, GradeResult, Status
from grader.settings import settings


def _frame(header: dict, data: bytes = b"") -> bytes:
    h = json.dumps(header).encode()
    payload = struct.pack(">I", len(h)) + h + data
    return payload


def test_wire_round_trip_keeps_arrays_and_special_floats():
    msg = {"t": "result", "value": {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "x": float("nan"),
                                    "n": [1, np.int64(2), None], "s": "é"}}
    buf = bytearray(wire.encode(msg))
    [payload] = wire.split_frames(buf, max_frame=1 << 20)
    out = wire.decode(payload)
    assert out["value"]["a"].dtype == np.float32 and out["value"]["a"].shape == (2, 3)
    assert np.isnan(out["value"]["x"]) and out["value"]["n"] == [1, 2, None] and out["value"]["s"] == "é"
    assert buf == bytearray()


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"\x00\x00", "short"),
        (struct.pack(">I", 999) + b"{}", "beyond"),
        (struct.pack(">I", 5) + b"notjs", "not JSON"),
        (_frame({"body": {}, "arrays": [{"dtype": "object", "shape": [1], "offset": 0, "nbytes": 8}]}), "not allowed"),
        (_frame({"body": {}, "arrays": [{"dtype": "float64", "shape": [10], "offset": 0, "nbytes": 80}]}, b"x" * 8),
         "does not match"),
        (_frame({"body": {}, "arrays": [{"dtype": "float64", "shape": [-1], "offset": 0, "nbytes": 8}]}, b"x" * 8),
         "bad shape"),
        (_frame({"body": {"v": {"$nd": 3}}, "arrays": []}), "bad array reference"),
        (_frame({"body": [1], "arrays": []}), "not an object"),
    ],
)
def test_wire_rejects_malformed_frames(payload, words):
    with pytest.raises(wire.WireError, match=words):
        wire.decode(payload)


def test_wire_rejects_deep_nesting_and_oversized_frames():
    deep: dict = {}
    cur = deep
    for _ in range(50):
        cur["x"] = {}
        cur = cur["x"]
    with pytest.raises(wire.WireError, match="nested"):
        wire.decode(_frame({"body": deep, "arrays": []}))
    buf = bytearray(struct.pack(">I", 10**9))
    with pytest.raises(wire.WireError, match="exceeds"):
        wire.split_frames(buf, max_frame=1 << 20)


def test_compare_messages_name_shape_and_worst_element():
    want = np.zeros((2, 3))
    assert compare_array(np.zeros((3, 2)), want, what="Linear.backward", shape_doc="(batch, input_dim)") == (
        "Linear.backward has shape (3, 2); expected (2, 3) = (batch, input_dim)")
    got = want.copy()
    got[1, 2] = 0.5
    msg = compare_array(got, want, what="dL_wrt_x")
    assert msg == "dL_wrt_x is wrong at [1, 2] (got 0.5, expected 0; 1 of 6 values differ)"
    assert "a list" in compare_array({"$list": [1], "type": "list"}, want, what="f")
    assert "torch tensor" in compare_array({"$tensor": np.zeros(1)}, want, what="f")
    assert "nan" in compare_array(np.full((2, 3), np.nan), want, what="f")
    assert compare_array(want + 1e-9, want, what="f") is None


def test_hidden_sets_go_to_the_sandbox_shuffled_afresh_and_without_labels():
    spec = load_assignment("rpz-cnn")
    check = spec.check("pytorch_cnn.MyNet.accuracy")
    plans, images = [], []
    for _ in range(2):
        inputs = Inputs(settings())
        plans.append(TorchAccuracy().plan(check, spec, inputs, np.random.default_rng(0)))
        images.append(inputs.datasets["d0"])
        # nothing the sandbox receives carries the labels
        assert set(inputs.datasets) == {"d0"} and all(a.dtype == np.uint8 for a in inputs.datasets.values())
        assert "labels" not in json.dumps([op.to_wire() for op in plans[-1].ops])
    labels = [p.facts.parts[0].labels for p in plans]
    assert not np.array_equal(labels[0], labels[1]), "same order twice (judge seed was the same on purpose)"
    from grader.data import load_hidden

    hidden = load_hidden(settings(), "fashion_mnist")
    public = hidden.images.reshape(len(hidden.labels), -1).astype(np.int16)
    exact = {bytes(row) for row in hidden.images.reshape(len(hidden.labels), -1)}
    for imgs, lab in zip(images, labels, strict=True):
        # the judge's labels follow the images the sandbox gets: each shown image is a public one, dithered
        for i in (0, 1, len(lab) - 1):
            dist = np.abs(public - imgs[i].reshape(-1).astype(np.int16)).max(axis=1)
            nearest = np.flatnonzero(dist <= 1)
            assert len(nearest) >= 1 and hidden.labels[nearest[0]] == lab[i]
        # ... but none of them has the bytes of a public image, so a table keyed by those finds nothing
        assert not any(bytes(row) in exact for row in imgs.reshape(len(lab), -1))
    # ... and the same dithered images both times: a regrade gives the same accuracy
    assert sorted(bytes(r) for r in images[0].reshape(len(labels[0]), -1)) == \
        sorted(bytes(r) for r in images[1].reshape(len(labels[1]), -1))


def test_rpz_spec_gives_six_points_and_every_check_has_a_known_kind_and_target():
    from grader.judge.kinds import KINDS

    spec = load_assignment("rpz-cnn")
    assert spec.max_score == pytest.approx(6.0)
    assert {c.target for c in spec.checks} >= {"Linear", "ReLU", "Sigmoid", "SE", "MyNet", "FinetuneNet", "classify"}
    assert all(c.kind in KINDS for c in spec.checks)


def test_result_json_round_trip_and_exit_codes():
    r = GradeResult.from_checks(
        assignment="rpz-cnn", metrics={"m": 0.5}, timings={"total_s": 1.0}, notices=["n"],
        checks=[CheckResult(id="a", target="A", status=CheckStatus.PASSED, points=1, max_points=1),
                CheckResult(id="b", target="B", status=CheckStatus.FAILED, points=0, max_points=2, message="x")])
    d = json.loads(r.to_json())
    assert list(d)[:4] == ["schema", "assignment", "status", "message"]
    assert d["score"] == 1 and d["max_score"] == 3 and d["passed"] is False
    assert GradeResult.from_dict(d) == r
    assert r.exit_code == 0
    assert GradeResult.rejected(assignment="x", message="m", max_score=1).exit_code == 2
    assert GradeResult.error(assignment="x", message="m").status is Status.ERROR


# ----------------------------------------------------------------------------- kinds run in-process
# The judge's op scripts run here through the harness's own interpreter (the code that runs in the sandbox), on
# student modules written to a temporary folder: the kinds' plan and judge logic, without the sandbox's start-up
# cost. Gradings through the real sandbox are in tests/test_judge_*.py.

def local_loader(folder):
    """Import student modules from `folder` under private names (nothing cached in sys.modules between tests)."""
    import importlib.util
    import itertools
    import sys

    loaded: dict[str, object] = {}
    counter = itertools.count()

    def load(name: str):
        if name not in loaded:
            path = folder / f"{name}.py"
            if not path.is_file():
                if name in sys.modules:
                    return sys.modules[name]
                from grader.harness.ops import OpError

                raise OpError(f"{name}.py is missing")
            spec = importlib.util.spec_from_file_location(f"_judge_local_{name}_{next(counter)}_{id(folder)}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded[name] = module
        return loaded[name]

    return load


def run_local(tmp_path, assignment: str, check_id: str, files: dict, *, seed: int = 0, check=None):
    """Plan, run (in-process) and judge one check of `assignment` on the given student files; (verdict, plan, run)."""
    import copy

    from grader.harness.ops import Interpreter, error_info
    from grader.judge.context import GroupRun, OpResult
    from grader.judge.execute import Task, run_reference
    from grader.judge.kinds import KINDS

    spec = load_assignment(assignment)
    check = check or spec.check(check_id)
    sub, data = tmp_path / "submission", tmp_path / "in"
    sub.mkdir(exist_ok=True)
    data.mkdir(exist_ok=True)
    for name, text in files.items():
        (sub / name).write_bytes(text.encode() if isinstance(text, str) else text)
    inputs = Inputs(settings())
    plan = KINDS[check.kind].plan(check, spec, inputs, np.random.default_rng(seed))
    for name, images in inputs.datasets.items():
        np.save(data / f"{name}.npy", images, allow_pickle=False)
    interp = Interpreter(load_module=local_loader(sub), inputs=inputs.arrays, data_dir=data, submission_dir=sub)
    run = GroupRun()
    for op in plan.ops:
        try:
            run.results.append(OpResult(value=copy.deepcopy(interp.run(op))))  # the wire sends a snapshot
        except Exception as exc:  # noqa: BLE001 - what the sandbox reports as the op's error
            run.results.append(OpResult(error=error_info(exc, submission_dir=sub)))
            break
    refs = run_reference([Task(index=0, check_id=check.id, plan=plan)], reference_dir=spec.reference_dir,
                         inputs=inputs)
    return KINDS[check.kind].judge(check, spec, plan, run, refs.get(0)), plan, run


def reference_text(folder: str, name: str) -> str:
    from pathlib import Path

    return (Path(__file__).resolve().parent.parent / "grader" / "assignments" / folder / "reference" / name).read_text()
