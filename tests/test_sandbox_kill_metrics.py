"""Sandbox kills are counted by cause in the result's metrics (`sandbox.kills.<cause>`), for Prometheus."""

from __future__ import annotations

import pytest

from grader.judge.execute import kill_cause
from grader.sandbox import Outcome
from grader.sandbox.cgroups import Usage
from tests.test_hostile import in_linear_forward, numpy_nn

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("host_unharmed")]


def test_kill_cause_labels() -> None:
    quiet = Usage(oom_killed=False, pids_limit_hit=False, peak_memory_bytes=0)
    assert kill_cause(Outcome.TIMEOUT, quiet) == "timeout"
    assert kill_cause(Outcome.CRASH, quiet) == "crash"
    assert kill_cause(Outcome.OVERFLOW, quiet) == "overflow"
    assert kill_cause(Outcome.MALFORMED, quiet) == "protocol"
    assert kill_cause(Outcome.KILLED, Usage(oom_killed=True, pids_limit_hit=False, peak_memory_bytes=0)) == "memory"
    assert kill_cause(Outcome.TIMEOUT, Usage(oom_killed=False, pids_limit_hit=True, peak_memory_bytes=0)) == "pids"


def test_a_clean_grading_reports_no_kills(grade) -> None:
    result = grade(numpy_nn())
    assert not [k for k in result.metrics if k.startswith("sandbox.kills.")]


def test_timeout_and_memory_kills_are_counted(grade) -> None:
    hang = grade(numpy_nn(replace=in_linear_forward("while True:\n    pass")), op_s=2)
    assert hang.metrics["sandbox.kills.timeout"] >= 1.0  # every check calling Linear.forward restarts it
    assert hang.metrics["sandbox.kills.timeout"] <= hang.metrics["sandbox.starts"]
    # op_s 30: first-touch page faults on this VM can run at ~120 MB/s (see test_hostile's memory bomb)
    hog = grade(numpy_nn(replace=in_linear_forward("import numpy as np\nhog = np.ones((4, 2**30 // 8))")),
                memory_bytes=512 * 2**20, op_s=30)
    assert hog.metrics["sandbox.kills.memory"] >= 1.0
