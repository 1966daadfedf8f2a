"""Hostile input, round 2 (issue 11, the grader's items): each attack of tests/attacks.py graded by the real engine
in the real sandbox. The grading ends with a correct, clear report (or a failed check), the host is unharmed,
and where the attack is on a limit the test measures the limit."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.api import grade_submission
from grader.result import CheckStatus, GradeResult, Status
from tests import attacks
from tests.conftest import check, make_zip, reference_file
from tests.tooling import import_tool

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("host_unharmed")]
ROOT = Path(__file__).resolve().parent.parent
LINEAR = ["numpy_nn.Linear.interface", "numpy_nn.Linear.forward", "numpy_nn.Linear.backward",
          "numpy_nn.Linear.gradcheck", "numpy_nn.Linear.params", "numpy_nn.network", "numpy_nn.ReLU.forward"]


def torch_settings(cfg):
    """FAST_LIMITS with room for importing torch on a busy machine (the hangs these tests build are elsewhere)."""
    return cfg.with_(limit_overrides={**cfg.limit_overrides, "import_s": 90.0, "build_s": 60.0, "wall_s": 600.0})


def grade_in_child(zip_path: Path, cfg, *, assignment: str = "rpz-cnn", limits: dict | None = None,
                   ) -> tuple[subprocess.CompletedProcess, int]:
    """`autograder grade --json` in a child process; returns it and the child's peak resident memory (bytes)."""
    code = ("import re, sys\nfrom grader.cli import main\nrc = main(sys.argv[1:])\n"
            "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
            "print('VMHWM', hwm, file=sys.stderr)\nsys.exit(rc)\n")
    lim = {**cfg.limit_overrides, **(limits or {})}
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "AUTOGRADER_WORK_DIR": str(cfg.work_dir),
           "AUTOGRADER_CGROUP_NAME": cfg.cgroup_name, "AUTOGRADER_HIDDEN_DATA": str(cfg.hidden_data),
           "AUTOGRADER_LIMITS": ",".join(f"{k}={v}" for k, v in lim.items())}
    proc = subprocess.run([sys.executable, "-c", code, "grade", str(zip_path), "--assignment", assignment, "--json"],
                          capture_output=True, text=True, env=env, timeout=900)
    hwm = re.search(r"VMHWM (\d+)", proc.stderr)
    return proc, int(hwm.group(1)) * 1024 if hwm else 0


# ---------------------------------------------------------------------------------------------- 1. memory
@pytest.mark.slow
def test_giant_frame_of_nested_lists_is_refused_without_memory(tmp_path, fast_settings):
    z = make_zip(tmp_path / "giant.zip", attacks.giant_nested_list_frame(mib=64))
    proc, judge_peak = grade_in_child(z, fast_settings, limits={"op_s": 60.0})  # time to build 64 MiB
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = GradeResult.from_dict(json.loads(proc.stdout))
    fwd = check(result, "numpy_nn.Linear.forward")
    assert fwd.status is CheckStatus.FAILED and "cannot accept" in fwd.message, fwd.message
    assert check(result, "numpy_nn.ReLU.forward").status is CheckStatus.PASSED
    assert result.metrics["sandbox.starts"] >= 5  # it crashed and restarted for each Linear check
    sandbox_peak = result.metrics["sandbox.peak_memory_mb"] * 2**20
    print(f"judge peak {judge_peak / 2**20:.0f} MiB, sandbox peak {sandbox_peak / 2**20:.0f} MiB")
    assert judge_peak < 400 * 2**20, f"the judge grew to {judge_peak / 2**20:.0f} MiB"
    assert judge_peak + sandbox_peak < 2 * 2**30


@pytest.mark.slow
def test_many_valid_frames_stop_at_the_retained_bound(tmp_path, fast_settings):
    """Frames just under the header cap, in the expected order, over several restarts: the judge keeps at most
    `retained_bytes` (measured: its peak stays far below the review's gigabytes)."""
    z = make_zip(tmp_path / "many.zip", attacks.many_big_valid_frames())
    proc, judge_peak = grade_in_child(z, fast_settings, limits={"retained_bytes": 128 * 2**20, "op_s": 60.0})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = GradeResult.from_dict(json.loads(proc.stdout))
    assert result.status is Status.GRADED
    msgs = " | ".join(check(result, c).message for c in LINEAR[:-1])
    assert "more data than the grader keeps" in msgs, msgs
    assert result.metrics["judge.retained_mb"] <= 128 + 40  # the frame that crossed the bound counts in full
    sandbox_peak = result.metrics["sandbox.peak_memory_mb"] * 2**20
    print(f"judge peak {judge_peak / 2**20:.0f} MiB, sandbox peak {sandbox_peak / 2**20:.0f} MiB")
    assert judge_peak < 700 * 2**20, f"the judge grew to {judge_peak / 2**20:.0f} MiB"
    assert judge_peak + sandbox_peak < 2 * 2**30


@pytest.mark.slow
def test_judge_memory_bound_holds_when_the_retained_bound_is_lifted(tmp_path, fast_settings):
    """With the retained bound lifted, the judge's own bound (RLIMIT_DATA, judge_bytes above what the process
    used when the grading began) still holds: the grading ends with a JSON result, the process goes on, and its
    peak stays near the bound (the review's attack took it to gigabytes)."""
    z = make_zip(tmp_path / "many.zip", attacks.many_big_valid_frames())
    proc, baseline = grade_in_child(make_zip(tmp_path / "ok.zip", attacks._numpy()), fast_settings)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc, peak = grade_in_child(z, fast_settings, limits={"judge_bytes": 64 * 2**20, "retained_bytes": 2**30,
                                                         "op_s": 60.0})
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    text = result["message"] + " ".join(c["message"] for c in result["checks"])
    assert "ran out of its own memory bound" in text or "too large to decode" in text, text[:2000]
    print(f"judge peak {peak / 2**20:.0f} MiB with a bound of 64 MiB over {baseline / 2**20:.0f} MiB")
    assert peak < baseline + 64 * 2**20 + 48 * 2**20


# ---------------------------------------------------------------------------------------------- 2. NaN timings
def test_nan_clock_in_the_sandbox_does_not_reach_the_result(tmp_path, fast_settings):
    z = make_zip(tmp_path / "nan.zip", attacks.nan_clock())
    proc, _ = grade_in_child(z, fast_settings)
    assert proc.returncode == 0, proc.stderr[-3000:]
    d = json.loads(proc.stdout)  # allow_nan=False on the way out: valid JSON or a crash
    assert d["status"] == "graded"
    for c in d["checks"]:
        assert c.get("seconds") is None or 0 <= c["seconds"] < 600, c
    assert all(isinstance(v, float) for v in d["timings"].values())
    assert GradeResult.from_dict(d).to_dict() == d  # and it reads back as it was
    fwd = next(c for c in d["checks"] if c["id"] == "numpy_nn.Linear.forward")
    # the forged result carries a field of its own ("s", the harness's timing of old): refused as malformed
    assert fwd["status"] == "failed" and "cannot accept" in fwd["message"].lower(), fwd


def test_result_schema_round_trips_nan_and_null():
    from grader.result import CheckResult

    nan = float("nan")
    r = GradeResult.from_checks(
        assignment="rpz-cnn", checks=[CheckResult(id="a", target="A", status=CheckStatus.PASSED, points=nan,
                                                  max_points=1.0, seconds=float("inf"))],
        metrics={"acc": nan, "ok": 0.5, "inf": float("-inf")}, timings={"total_s": nan, "unpack_s": 0.1},
        notices=[])
    d = json.loads(r.to_json())
    assert d["metrics"] == {"ok": 0.5} and d["timings"] == {"unpack_s": 0.1}
    assert d["checks"][0]["points"] == 0.0 and "seconds" not in d["checks"][0]
    assert GradeResult.from_dict(d).to_dict() == d
    stored = {**d, "metrics": {"acc": None, "ok": 0.5}}  # what older versions stored for a NaN metric
    assert GradeResult.from_dict(stored).metrics == {"ok": 0.5}


# ---------------------------------------------------------------------------------------------- 3. malformed frames
@pytest.mark.parametrize("kind", ["shape_overflow", "huge_number", "long_integer", "deep_nesting", "unknown_kind",
                                  "extra_field", "forged_outcome"])
def test_malformed_frame_is_a_failed_check_not_a_grader_error(grade, kind):
    result = grade(attacks.malformed_frame(kind))
    assert result.status is Status.GRADED, result.message
    fwd = check(result, "numpy_nn.Linear.forward")
    assert fwd.status is CheckStatus.FAILED
    assert "Linear.forward" in fwd.message and ("cannot accept" in fwd.message or "is a float" in fwd.message
                                                or "expected" in fwd.message), fwd.message
    assert check(result, "numpy_nn.ReLU.forward").status is CheckStatus.PASSED


def test_wire_decoder_fuzz_only_raises_wire_error():
    """A seeded corpus of a few thousand frames (mutated valid frames, random bytes, forged headers)."""
    import random
    import struct

    import numpy as np

    from grader.harness import wire

    rng = random.Random(1234)
    valid = [wire.encode({"t": "result", "g": 1, "i": 2, "value": v})[4:] for v in
             (np.arange(12.0).reshape(3, 4), {"$dict": {"a": [1, 2.5, None]}}, "text", 7, [np.zeros(3, np.int8)])]
    pieces = [b"[", b"]", b"{", b"}", b'"$nd"', b":", b",", b"1e999999", b"9" * 5000, b"-", b"NaN", b'"shape"',
              b"4294967296", b"\xff", b"\x00", b'"arrays"', b'"body"', b"null", b"true", b'{"$float": "x"}']
    frames = []
    for _ in range(3000):
        kind = rng.random()
        if kind < 0.4:
            f = bytearray(rng.choice(valid))
            for _ in range(rng.randint(1, 8)):
                pos = rng.randrange(len(f))
                if rng.random() < 0.5:
                    f[pos] = rng.randrange(256)
                else:
                    f[pos:pos] = rng.choice(pieces)
            frames.append(bytes(f))
        elif kind < 0.7:
            body = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
            header = b'{"body": ' + body + b', "arrays": []}'
            frames.append(struct.pack(">I", len(header)) + header)
        elif kind < 0.9:
            shape = [rng.choice([0, 1, 3, 2**31, 2**32, 2**62, 2**64, -1]) for _ in range(rng.randint(0, 9))]
            desc = {"dtype": rng.choice(["float64", "int8", "object", "<f8"]), "shape": shape,
                    "offset": rng.choice([0, 8, -8, 2**70]), "nbytes": rng.choice([0, 8, 24, 2**70])}
            header = json.dumps({"body": {"v": {"$nd": rng.choice([0, 1, True, -1])}}, "arrays": [desc]}).encode()
            frames.append(struct.pack(">I", len(header)) + header + bytes(rng.randrange(64)))
        else:
            frames.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))))
    outcomes = {"ok": 0, "wire": 0}
    for f in frames:
        try:
            wire.decode(f)
            outcomes["ok"] += 1
        except wire.WireError:
            outcomes["wire"] += 1
    assert outcomes["wire"] > 1000 and outcomes["ok"] > 10, outcomes


def test_wire_decoder_property_only_raises_wire_error():
    hypothesis = import_tool("hypothesis")
    from hypothesis import strategies as st

    from grader.harness import wire

    @hypothesis.settings(max_examples=1500, deadline=None, derandomize=True)
    @hypothesis.given(st.binary(max_size=256))
    def raw(data: bytes) -> None:
        with contextlib.suppress(wire.WireError):
            wire.decode(data)

    json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                               lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
                               max_leaves=30)

    @hypothesis.settings(max_examples=1500, deadline=None, derandomize=True)
    @hypothesis.given(json_values, st.lists(json_values, max_size=3))
    def structured(body, arrays) -> None:
        header = json.dumps({"body": body, "arrays": arrays}).encode()
        with contextlib.suppress(wire.WireError):
            wire.decode(len(header).to_bytes(4, "big") + header)

    raw()
    structured()


# ---------------------------------------------------------------------------------------------- 6. hidden images
@pytest.mark.slow
def test_hidden_images_carried_out_in_messages_are_bounded(tmp_path, fast_settings):
    """classify() stashes the hidden images and raises with their pixels in hex; the images are not there at
    import time, and what leaves the grading is measured: fewer pixels than one 28x28 image."""
    files = {**attacks.hidden_image_smuggler(), "numpy_nn.py": reference_file("numpy_nn.py"),
             "model.pt": reference_file("model.pt"), "finetuned.pt": reference_file("finetuned.pt")}
    z = make_zip(tmp_path / "smuggle.zip", files)
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=torch_settings(fast_settings),
                              only=["pytorch_cnn.MyNet.build", "pytorch_cnn.MyNet.accuracy",
                                    "pytorch_cnn.FinetuneNet.accuracy"])
    assert result.status is Status.GRADED
    text = json.dumps(result.to_dict())
    pixels = sum(len(h) // 2 for h in re.findall(r"PIX((?:[0-9a-f]{2})+)", text))
    acc = check(result, "pytorch_cnn.MyNet.accuracy")
    assert acc.status is CheckStatus.FAILED and "RuntimeError" in acc.message, acc.message
    print(f"hidden pixels carried out in one grading: {pixels}")
    assert pixels < 28 * 28, pixels
    assert pixels <= 100


def test_hidden_sets_are_not_in_the_sandbox_at_import(tmp_path, fast_settings):
    """Student code that runs before any accuracy op (import, the numpy checks) sees no hidden set."""
    code = """
import glob
SEEN = sorted(glob.glob("/job/data/*") + glob.glob("/job/in/*.npy") + glob.glob("/job/**/*.npy", recursive=True))
"""
    files = attacks._numpy(prelude=code, forward="raise RuntimeError('SEEN=%r' % SEEN)")
    files.update({"pytorch_cnn.py": reference_file("pytorch_cnn.py"), "model.pt": reference_file("model.pt")})
    result = grade_submission(zip_path=make_zip(tmp_path / "seen.zip", files), assignment="rpz-cnn",
                              settings=torch_settings(fast_settings),
                              only=["numpy_nn.Linear.forward", "pytorch_cnn.MyNet.accuracy"])
    msg = check(result, "numpy_nn.Linear.forward").message
    assert "SEEN=[]" in msg, msg
    assert check(result, "pytorch_cnn.MyNet.accuracy").status is CheckStatus.PASSED


# ---------------------------------------------------------------------------------------------- 7. tensor subclass
@pytest.mark.slow
def test_tensor_subclass_does_not_hide_a_constant_classify(grade):
    files = {**attacks.tensor_subclass_constant_classify(), "numpy_nn.py": reference_file("numpy_nn.py")}
    result = grade(files, import_s=90.0, build_s=60.0)
    c = check(result, "pytorch_cnn.classify")
    assert c.status is CheckStatus.FAILED, c.message
    assert "disagrees" in c.message or "classify" in c.message, c.message


# ---------------------------------------------------------------------------------------------- 8. progress flood
def test_forged_start_frames_do_not_flood_progress(tmp_path, fast_settings):
    seen: list[tuple[float, str]] = []
    z = make_zip(tmp_path / "flood.zip", attacks.forged_progress_flood())
    t0 = time.monotonic()
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings,
                              progress=lambda c: seen.append((time.monotonic() - t0, c)))
    assert result.status is Status.GRADED
    planned = {c.id for c in result.checks}
    assert len(seen) <= len(planned), seen
    assert {c for _, c in seen} <= planned
    times = [t for t, _ in seen]
    assert all(b - a >= 0.2 for a, b in zip(times, times[1:], strict=False)), times
    c = check(result, "numpy_nn.Linear.interface")
    assert c.status is CheckStatus.FAILED and "cannot accept" in c.message, c.message


# ---------------------------------------------------------------------------------------------- 9. endless forward
@pytest.mark.slow
def test_endless_forward_costs_one_budget_and_the_rest_fails_fast(tmp_path, fast_settings):
    files = {**attacks.endless_forward(), "numpy_nn.py": reference_file("numpy_nn.py"),
             "model.pt": reference_file("model.pt")}
    z = make_zip(tmp_path / "endless.zip", files)
    cfg = fast_settings.with_(limit_overrides={**fast_settings.limit_overrides, "build_s": 12.0, "predict_s": 12.0,
                                               "import_s": 90.0, "wall_s": 600.0})
    t0 = time.monotonic()
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=cfg,
                              only=["pytorch_cnn.MyNet.build", "pytorch_cnn.classify", "pytorch_cnn.MyNet.checkpoint",
                                    "pytorch_cnn.MyNet.accuracy"])
    took = time.monotonic() - t0
    build = check(result, "pytorch_cnn.MyNet.build")
    assert build.status is CheckStatus.FAILED and "did not finish within 12 s" in build.message, build.message
    assert "pytorch_cnn.py line" in build.message and "_endless" in build.message, build.message
    for cid in ("pytorch_cnn.classify", "pytorch_cnn.MyNet.accuracy"):
        c = check(result, cid)
        assert c.status is CheckStatus.FAILED, c.message
        assert "was not run: MyNet.forward did not finish within 12 s in the check pytorch_cnn.MyNet.build" \
            in c.message, c.message
    assert check(result, "pytorch_cnn.MyNet.checkpoint").status is CheckStatus.PASSED
    print(f"grading with an endless forward took {took:.1f} s (wall budget 600 s)")
    assert took < 120, took


def test_op_budget_follows_the_reference_time():
    from grader.judge.budgets import op_budgets
    from grader.judge.context import GroupRun, OpResult
    from grader.sandbox import RunLimits

    limits = RunLimits(memory_bytes=1, pids=1, cpus=1, wall_s=600, output_bytes=1, tmpfs_bytes=1, op_s=20,
                       build_s=60, predict_s=60, import_s=120)
    from grader.harness.op_messages import CallOp, ImportOp, PredictOp

    ops = [ImportOp(module="m"), CallOp(module="m", name="f"), CallOp(module="m", name="slow"),
           PredictOp(ref="net", fn_module="m", fn="classify", data="d0"),
           PredictOp(ref="net", fn_module="m", fn="classify", data="d1")]
    ref = GroupRun(results=[OpResult(seconds=5.0), OpResult(seconds=0.01), OpResult(seconds=4.0)])
    assert op_budgets(ops, limits, ref, {3: 2.0, 4: 30.0}) == (120, 20, 40, 60, 300)
    assert op_budgets(ops, limits, None, {4: 100.0}) == (120, 20, 20, 60, 600)  # capped by the wall budget
