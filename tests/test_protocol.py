"""The typed sandbox protocol (grader/harness/protocol.py): every message round-trips through the wire, and a
frame that is not exactly one message kind is refused with WireError (which the judge makes MALFORMED)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from grader.harness import op_messages as m
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


# -- typed op requests (op_messages.py) ---------------------------------------------------------------------------
OPS: list[tuple[m.OpRequest, dict[str, Any]]] = [
    # (typed op, the dict the harness accepted for it before ops were typed)
    (m.ImportOp(module="numpy_nn", what="importing numpy_nn.py"),
     {"op": "import", "module": "numpy_nn", "what": "importing numpy_nn.py"}),
    (m.NewOp(module="numpy_nn", name="Linear", args=[3, 2], as_="L", what="Linear(3, 2)"),
     {"op": "new", "module": "numpy_nn", "name": "Linear", "args": [3, 2], "as": "L", "what": "Linear(3, 2)"}),
    (m.NewOp(module="m", name="C", args=[], kwargs={"k": 1}, report=False),
     {"op": "new", "module": "m", "name": "C", "args": [], "kwargs": {"k": 1}, "report": False}),
    (m.CallOp(ref="L", method="forward", args=[m.In("a0")], what="Linear.forward"),
     {"op": "call", "ref": "L", "method": "forward", "args": [{"$in": "a0"}], "what": "Linear.forward"}),
    (m.CallOp(module="m", name="f", args=[m.Ref("x"), {"$len": "w", "add": 1}], kwargs={}, as_="y", report=False),
     {"op": "call", "module": "m", "name": "f", "args": [{"$ref": "x"}, {"$len": "w", "add": 1}], "kwargs": {},
      "as": "y", "report": False}),
    (m.ValueOp(value={"a": m.In("a1")}, as_="d", report=False),
     {"op": "value", "value": {"a": {"$in": "a1"}}, "as": "d", "report": False}),
    (m.ValueOp(value=None), {"op": "value", "value": None}),
    (m.GetOp(module="m", name="f", as_="fn"), {"op": "get", "module": "m", "name": "f", "as": "fn"}),
    (m.NpLoadOp(file="w.npz", as_list=False, as_="w", report=False),
     {"op": "np_load", "file": "w.npz", "list": False, "as": "w", "report": False}),
    (m.AssignStateOp(ref="net", state="s"), {"op": "assign_state", "ref": "net", "state": "s"}),
    (m.SetattrOp(ref="L", attr="W", value=m.In("a2")), {"op": "setattr", "ref": "L", "attr": "W", "value": {"$in": "a2"}}),
    (m.GetattrOp(ref="L", attr="dW"), {"op": "getattr", "ref": "L", "attr": "dW"}),
    (m.GetitemOp(ref="P", key="W"), {"op": "getitem", "ref": "P", "key": "W"}),
    (m.GetitemOp(ref="P", key=0), {"op": "getitem", "ref": "P", "key": 0}),
    (m.IsubOp(ref="P", key="W", value=m.In("a3")), {"op": "isub", "ref": "P", "key": "W", "value": {"$in": "a3"}}),
    (m.SgdOp(lr=0.1, layers=["L0", "L1"]), {"op": "sgd", "lr": 0.1, "layers": ["L0", "L1"]}),
    (m.TorchProbeOp(ref="net", seed=7, shape=[2, 1, 28, 28]),
     {"op": "torch_probe", "ref": "net", "seed": 7, "shape": [2, 1, 28, 28]}),
    (m.KnownNetOp(classes=10, as_="known"), {"op": "known_net", "classes": 10, "as": "known"}),
    (m.TensorOp(value=m.In("a4"), dtype="float32", as_="x"),
     {"op": "tensor", "value": {"$in": "a4"}, "dtype": "float32", "as": "x"}),
    (m.TensorOp(value=[1.0]), {"op": "tensor", "value": [1.0]}),
    (m.StateKeysOp(ref="net"), {"op": "state_keys", "ref": "net"}),
    (m.TorchLoadOp(file="model.pt", as_state="state", report=False),
     {"op": "torch_load", "file": "model.pt", "as_state": "state", "report": False}),
    (m.TorchLoadOp(file="model.pt", as_state="state", whole_model_of="nb"),
     {"op": "torch_load", "file": "model.pt", "as_state": "state", "whole_model_of": "nb"}),
    (m.LoadStateDictOp(ref="net", state="state"), {"op": "load_state_dict", "ref": "net", "state": "state"}),
    (m.EvalOp(ref="net"), {"op": "eval", "ref": "net"}),
    (m.PredictOp(ref="net", fn_module="m", fn="classify", data="d0"),
     {"op": "predict", "ref": "net", "fn_module": "m", "fn": "classify", "data": "d0"}),
    (m.PredictOp(ref="net", fn_module="m", fn="classify", data="d0", scale=255.0, batch=32, limit=64),
     {"op": "predict", "ref": "net", "fn_module": "m", "fn": "classify", "data": "d0", "scale": 255.0, "batch": 32,
      "limit": 64}),
]


def test_every_op_class_is_covered() -> None:
    assert {type(op) for op, _ in OPS} == set(m.OP_CLASSES.values())
    assert {cls.KIND for cls in m.OP_CLASSES.values()} == set(OpKind)


@pytest.mark.parametrize(("op", "body"), OPS, ids=lambda x: type(x).__name__ if isinstance(x, m.OpBase) else "")
def test_every_op_round_trips_and_sends_the_dict_the_harness_accepted(op: m.OpRequest, body: dict[str, Any]) -> None:
    assert op.to_wire() == body
    assert op_kind(body) is op.KIND  # the field set of its kind (OP_FIELDS)
    assert m.op_from_wire(body) == op
    assert m.op_from_wire(wire.decode(wire.encode(op.to_wire())[4:])) == op  # through the wire as JSON


def test_a_typed_request_carries_the_ops_wire_dicts() -> None:
    request = Request(groups=(Group(index=2, ops=tuple(op for op, _ in OPS)),))
    assert request.to_wire() == {"groups": [{"index": 2, "ops": [body for _, body in OPS]}]}
    decoded = Request.from_wire(request.to_wire())
    assert [m.op_from_wire(op) for op in decoded.groups[0].ops] == [op for op, _ in OPS]


WRONG_TYPES: dict[str, dict[str, Any]] = {
    "module not a string": {"op": "import", "module": 3},
    "args not a list": {"op": "call", "module": "m", "name": "f", "args": "x"},
    "kwargs not an object": {"op": "call", "module": "m", "name": "f", "kwargs": [1]},
    "as not a string": {"op": "value", "value": 1, "as": ["x"]},
    "report not a boolean": {"op": "value", "value": 1, "report": "no"},
    "list not a boolean": {"op": "np_load", "file": "w.npz", "list": 1},
    "key a float": {"op": "getitem", "ref": "P", "key": 1.5},
    "lr a string": {"op": "sgd", "lr": "0.1", "layers": []},
    "layers not strings": {"op": "sgd", "lr": 0.1, "layers": [1]},
    "seed a bool": {"op": "torch_probe", "ref": "net", "seed": True, "shape": [1]},
    "shape not integers": {"op": "torch_probe", "ref": "net", "seed": 1, "shape": ["1"]},
    "batch a float": {"op": "predict", "ref": "net", "fn_module": "m", "fn": "f", "data": "d0", "batch": 2.0},
}


@pytest.mark.parametrize("body", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_an_op_with_a_wrong_typed_field_is_refused(body: dict[str, Any]) -> None:
    op_kind(body)  # its fields are its kind's: only their types are wrong
    with pytest.raises(wire.WireError, match=" is not "):
        m.op_from_wire(body)
    interp = Interpreter(load_module=lambda name: pytest.fail("nothing is imported"), inputs={})
    with pytest.raises(Exception) as caught:
        interp.run(body)
    failure = error_info(caught.value, submission_dir=None)
    assert failure.outcome is Outcome.MALFORMED and "grader bug" in failure.message
