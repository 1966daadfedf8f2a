"""The typed sandbox protocol (grader/harness/protocol.py): every message round-trips through the wire, and a
frame that is not exactly one message kind is refused with WireError (which the judge makes MALFORMED)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from grader.harness import wire
from grader.harness.ops import Interpreter, error_info
from grader.harness.protocol import (
    Done,
    Failure,
    Frame,
    Group,
    Hello,
    OpKind,
    Outcome,
    Request,
    ResultFailure,
    ResultValue,
    Start,
    frame_from_wire,
    op_kind,
)

FRAMES: list[Frame] = [
    Hello(pid=42),
    Start(group=3, op=0),
    ResultValue(group=3, op=1, value={"$list": [1.5, "x", None], "type": "tuple"}),
    ResultFailure(group=3, op=2, failure=Failure(Outcome.RAISED, "boom", type="ValueError",
                                                 where="numpy_nn.py line 3, in forward")),
    ResultFailure(group=0, op=0, failure=Failure(Outcome.FAILED, "numpy_nn.py is missing", type="OpError")),
    ResultFailure(group=0, op=0, failure=Failure(Outcome.MALFORMED, "unknown op", type="ProtocolError")),
    Done(),
]


def through_wire(body: dict[str, Any]) -> Frame:
    frame = wire.encode(body)
    return frame_from_wire(wire.decode(frame[4:]))


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_every_frame_round_trips(frame: Frame) -> None:
    assert through_wire(frame.to_wire()) == frame


def test_a_value_with_arrays_round_trips() -> None:
    value = {"$tensor": np.arange(6, dtype=np.float32).reshape(2, 3), "dtype": "float32"}
    got = through_wire(ResultValue(group=1, op=2, value=value).to_wire())
    assert isinstance(got, ResultValue) and got.value["dtype"] == "float32"
    assert np.array_equal(got.value["$tensor"], value["$tensor"])


def test_request_round_trips() -> None:
    request = Request(groups=(Group(index=0, ops=({"op": "import", "module": "m", "what": "importing m.py"},)),
                              Group(index=5, ops=())))
    assert Request.from_wire(request.to_wire()) == request


HOSTILE: dict[str, dict[str, Any]] = {
    "unknown kind": {"t": "results", "g": 0, "i": 0, "value": 1},
    "no kind": {"g": 0, "i": 0, "value": 1},
    "missing field": {"t": "start", "g": 0},
    "missing value": {"t": "result", "g": 0, "i": 0},
    "wrong type": {"t": "start", "g": "0", "i": 0},
    "bool for a count": {"t": "start", "g": True, "i": 0},
    "negative count": {"t": "start", "g": -1, "i": 0},
    "extra field": {"t": "done", "pid": 1},
    "a forged timing": {"t": "result", "g": 0, "i": 0, "s": 0.0, "value": 1},
    "value and error": {"t": "result", "g": 0, "i": 0, "value": 1,
                        "error": Failure(Outcome.RAISED, "x", type="E").to_wire()},
    "error not an object": {"t": "result", "g": 0, "i": 0, "error": "boom"},
    "error missing field": {"t": "result", "g": 0, "i": 0,
                            "error": {"outcome": "raised", "type": "E", "message": "x"}},
    "error extra field": {"t": "result", "g": 0, "i": 0, "error": {
        **Failure(Outcome.RAISED, "x", type="E").to_wire(), "sandbox": True}},
    "error of unknown outcome": {"t": "result", "g": 0, "i": 0,
                                 "error": {"outcome": "fine", "type": "E", "message": "x", "where": ""}},
    "a judge's outcome": {"t": "result", "g": 0, "i": 0,
                          "error": {"outcome": "timeout", "type": "E", "message": "x", "where": ""}},
    "no exception type": {"t": "result", "g": 0, "i": 0,
                          "error": {"outcome": "raised", "type": "", "message": "x", "where": ""}},
    "message not a string": {"t": "result", "g": 0, "i": 0,
                             "error": {"outcome": "raised", "type": "E", "message": 3, "where": ""}},
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_frame_is_refused_with_wire_error(body: dict[str, Any]) -> None:
    with pytest.raises(wire.WireError):
        through_wire(body)


@pytest.mark.parametrize("body", [[], {"groups": {}}, {"groups": [{"index": 0}]}, {"groups": [], "x": 1},
                                  {"groups": [{"index": "0", "ops": []}]}, {"groups": [{"index": 0, "ops": {}}]}])
def test_a_malformed_request_is_refused(body: Any) -> None:
    with pytest.raises(wire.WireError):
        Request.from_wire(body)


@pytest.mark.parametrize("op", [{"op": "exec", "code": "1"}, {"op": "run_op"}, {"module": "m"}, {"op": 3},
                                {"op": "import"}, {"op": "import", "module": "m", "path": "/etc"}, "import"])
def test_an_op_the_harness_does_not_know_is_malformed(op: Any) -> None:
    with pytest.raises(wire.WireError):
        op_kind(op)
    interp = Interpreter(load_module=lambda name: pytest.fail("nothing is imported"), inputs={})
    with pytest.raises(Exception) as caught:
        interp.run(op)
    failure = error_info(caught.value, submission_dir=None)
    assert failure.outcome is Outcome.MALFORMED and failure.harness and not failure.sandbox
    assert "grader bug" in failure.message
    assert through_wire(ResultFailure(group=0, op=0, failure=failure).to_wire()) == ResultFailure(0, 0, failure)


def test_every_op_kind_has_a_method() -> None:
    interp = Interpreter(load_module=lambda name: pytest.fail("nothing is imported"), inputs={})
    assert set(interp.ops) == set(OpKind)
    assert all(m.__name__ == f"op_{kind.value}" for kind, m in interp.ops.items())


def test_failures_say_whose_they_are() -> None:
    raised = error_info(ValueError("no"), submission_dir=None)
    assert raised.outcome is Outcome.RAISED and not raised.harness and not raised.sandbox
    judged = Failure(Outcome.TIMEOUT, "did not finish within 20 s")
    assert judged.sandbox and not judged.harness
