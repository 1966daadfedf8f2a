"""Issue 13, streamed verdicts: run_grading's `on_verdict` is told each check as soon as it is judged."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.api import grade_submission
from grader.assignments.build import build_submission_zip
from grader.result import CheckResult, CheckStatus
from grader.settings import GraderSettings

from .conftest import make_zip, reference_file

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("host_unharmed")]


def test_reference_verdicts_stream_before_the_slow_torch_checks_end(tmp_path: Path,
                                                                   fast_settings: GraderSettings) -> None:
    events: list[tuple[str, str]] = []  # ("verdict" | "progress", check id), in the order they arrived
    told: list[CheckResult] = []

    def on_verdict(c: CheckResult) -> None:
        told.append(c)
        events.append(("verdict", c.id))

    z = build_submission_zip("rpz-cnn", tmp_path / "reference.zip")
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings, on_verdict=on_verdict,
                              progress=lambda check_id: events.append(("progress", check_id)))
    assert result.score == result.max_score and result.passed
    assert sorted(c.id for c in told) == sorted(c.id for c in result.checks)  # one each, no more
    assert {c.id: c for c in told} == {c.id: c for c in result.checks}  # the reference has no follow-up round
    order = [check_id for kind, check_id in events if kind == "verdict"]
    first_numpy = order.index(next(i for i in order if i.startswith("numpy_nn.")))
    torch_verdicts = [n for n, i in enumerate(order) if i.startswith("pytorch_cnn.")]
    assert first_numpy < min(torch_verdicts)
    # ... and before the sandbox even started the torch checks (progress names each check as it starts)
    started_torch = next(n for n, (kind, i) in enumerate(events) if kind == "progress" and i.startswith("pytorch_cnn."))
    assert events.index(("verdict", order[first_numpy])) < started_torch


def test_missing_file_verdicts_come_first_and_a_failing_callback_changes_nothing(
        tmp_path: Path, fast_settings: GraderSettings) -> None:
    told: list[CheckResult] = []

    def on_verdict(c: CheckResult) -> None:
        told.append(c)
        raise RuntimeError("the web app is down")  # logged; the grading goes on

    only = ["numpy_nn.ReLU.forward", "numpy_nn.Linear.forward", "pytorch_cnn.MyNet.build"]
    z = make_zip(tmp_path / "numpy-only.zip", {"numpy_nn.py": reference_file("numpy_nn.py")})
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings, only=only,
                              on_verdict=on_verdict)
    assert told[0].id == "pytorch_cnn.MyNet.build" and told[0].status is CheckStatus.FAILED
    assert "missing" in told[0].message
    assert {c.id: c for c in told} == {c.id: c for c in result.checks} and len(told) == 3


def test_verdicts_of_checks_that_crash_or_restart_the_sandbox_stream_once_each(tmp_path: Path,
                                                                             fast_settings: GraderSettings) -> None:
    """A check that exits the sandbox (blamed, then a restart for the rest) and a loop that hangs one op: each
    check is told once, as the final result has it."""
    src = reference_file("numpy_nn.py").decode()
    src = src.replace("return dL_wrt_output @ self.W.T", "import os; os._exit(3)\n        return 0", 1)
    assert "os._exit" in src
    told: list[CheckResult] = []
    z = make_zip(tmp_path / "exits.zip", {"numpy_nn.py": src})
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings, on_verdict=told.append)
    by_id = {c.id: c for c in result.checks}
    assert by_id["numpy_nn.Linear.backward"].status is CheckStatus.FAILED
    assert by_id["numpy_nn.Sigmoid.backward"].status is CheckStatus.PASSED  # run by a later sandbox process
    assert sorted(c.id for c in told) == sorted(by_id) and {c.id: c for c in told} == by_id


@pytest.mark.slow
def test_the_follow_up_round_amends_a_streamed_verdict_and_the_final_result_wins(tmp_path: Path,
                                                                               fast_settings: GraderSettings) -> None:
    """A MyNet trained on transposed images (near chance): its verdict is streamed as soon as it is judged; the
    follow-up round then adds the hint to the message of the final result, the only difference."""
    source = reference_file("pytorch_cnn.py").decode().replace(
        "return model(x).argmax(dim=1)", "return model(x.transpose(2, 3)).argmax(dim=1)")
    files = {"numpy_nn.py": reference_file("numpy_nn.py"), "pytorch_cnn.py": source.encode(),
             "model.pt": reference_file("model.pt")}
    told: list[CheckResult] = []
    z = make_zip(tmp_path / "transposed.zip", files)
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings.with_(limit_overrides={}),
                              only=["pytorch_cnn.MyNet.accuracy"], on_verdict=told.append)
    (streamed,), (final,) = told, result.checks
    assert "follow_up_s" in result.timings and "transposed images" in final.message
    assert "transposed images" not in streamed.message and streamed.message in final.message
    assert streamed.model_copy(update={"message": final.message}) == final
