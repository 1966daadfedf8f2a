"""One fault, one failed check, where a student's function calls other student functions that have checks of their
own (GT's back_prop calls sigmoid_prime, feed_forward calls sigmoid and softmax; CMU's forward applies sigmoid or
softmax).

A function check may name such helpers (``units = ["sigmoid_prime"]``). At plan time the reference runs the
check's ops in the judge's process with its helpers recorded: every call and its inputs. The plan then asks the
sandbox for the student's helpers' outputs on exactly those inputs. When the student's function deviates from the
reference, the judge runs the reference again with the student's helper outputs in place of its own (a
counterfactual: "the reference, had it the student's sigmoid_prime"). If the student's function matches that, the
deviation is the helper's doing, and the helper's own check costs it. This is exact, not a guess: it applies only
when the counterfactual run calls the helpers on the very inputs recorded (otherwise the verdict stands).

The reference runs in a private copy of its module, so that replacing its helpers cannot disturb anything else.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

import numpy as np

from grader.harness.op_messages import CallOp, OpRequest
from grader.harness.ops import Interpreter
from grader.judge.context import Inputs
from grader.judge.reference import private_module

UNUSABLE = object()
"""What `plain` returns for a raw value it cannot turn back into numbers and arrays."""


def plain(raw: Any, arrays: dict[str, np.ndarray], stem: str) -> Any:
    """An op value (arrays added to `arrays` under names from `stem`) for a raw student value made of arrays,
    numbers, lists, tuples and dicts; UNUSABLE otherwise."""
    counter = itertools.count()

    def conv(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            name = f"{stem}_{next(counter)}"
            arrays[name] = v
            return {"$in": name}
        if isinstance(v, bool | int | float | str) or v is None:
            return v
        if isinstance(v, dict) and "$list" in v:
            return [conv(x) for x in v["$list"]]
        if isinstance(v, dict) and "$dict" in v:
            return {str(k): conv(x) for k, x in v["$dict"].items()}
        raise ValueError(v)

    try:
        return conv(raw)
    except ValueError:
        return UNUSABLE


class Inconsistent(Exception):
    """The counterfactual run called a helper on inputs the student's helper was not asked about."""


@contextmanager
def replaced(module: ModuleType, helpers: dict[str, Callable[..., Any]]) -> Iterator[None]:
    """The module's helpers replaced: as globals, and where its functions hold them as default arguments
    (``def forward(X, params, name='', activation=sigmoid)``)."""
    originals = {name: getattr(module, name) for name in helpers}
    defaults: list[tuple[FunctionType, tuple[Any, ...] | None]] = []
    for fn in [v for v in vars(module).values() if isinstance(v, FunctionType)]:
        if fn.__defaults__ and any(d is o for d in fn.__defaults__ for o in originals.values()):
            defaults.append((fn, fn.__defaults__))
            fn.__defaults__ = tuple(next((helpers[n] for n, o in originals.items() if d is o), d)
                                    for d in fn.__defaults__)
    for name, helper in helpers.items():
        setattr(module, name, helper)
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)
        for fn, saved in defaults:
            fn.__defaults__ = saved


def _run(ops: Sequence[OpRequest], module: ModuleType, arrays: Mapping[str, np.ndarray]) -> list[Any]:
    """Run ops against the (private) reference module; raw values as the harness describes them, None after a
    failure."""
    interp = Interpreter(load_module=lambda name: module, inputs=arrays)
    out: list[Any] = []
    for op in ops:
        try:
            out.append(copy.deepcopy(interp.run(op)))
        except Inconsistent:
            raise
        except Exception:  # noqa: BLE001 - the reference failed: no counterfactual
            out.append(None)
            break
    return out


def record(ops: Sequence[OpRequest], *, reference_dir: Path, module: str, units: list[str],
           arrays: Mapping[str, np.ndarray]) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]] | None:
    """The reference's helper calls while it runs `ops`: (helper, args, kwargs), in order; None when a call takes
    something else than numbers and arrays (the student's helper cannot then be asked about it)."""
    mod = private_module(reference_dir, module)
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def recorder(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, copy.deepcopy(args), copy.deepcopy(kwargs)))
            return fn(*args, **kwargs)
        return call

    with replaced(mod, {u: recorder(u, getattr(mod, u)) for u in units}):
        _run(ops, mod, arrays)
    plain = all(isinstance(v, np.ndarray | int | float | str) for _, a, k in calls for v in [*a, *k.values()])
    return calls if plain else None


def probe_ops(calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]], *, module: str, inputs: Inputs,
              subject: str) -> list[OpRequest]:
    """Ops asking the student's helpers for their outputs on the recorded inputs."""
    def value(v: Any) -> Any:
        return inputs.add(v) if isinstance(v, np.ndarray) else v

    return [CallOp(module=module, name=name, args=[value(a) for a in args],
                   kwargs={k: value(v) for k, v in kwargs.items()},
                   what=f"{name} on an input {subject} gives it") for name, args, kwargs in calls]


def counterfactual(ops: Sequence[OpRequest], *, reference_dir: Path, module: str,
                   calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]], outputs: list[Any],
                   arrays: Mapping[str, np.ndarray]) -> list[Any] | None:
    """The reference's raw values for `ops` with the student's helper outputs (`outputs[k]` for `calls[k]`) in
    place of its own; None when the run asks a helper about other inputs than recorded, or fails."""
    if any(not isinstance(o, np.ndarray | int | float) or isinstance(o, bool) for o in outputs):
        return None
    mod = private_module(reference_dir, module)
    queue = {name: [(a, k, o) for (n, a, k), o in zip(calls, outputs, strict=True) if n == name]
             for name in {n for n, _, _ in calls}}

    def replayer(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if not queue.get(name):
                raise Inconsistent(name)
            want_args, want_kwargs, out = queue[name].pop(0)
            if not (_same(args, want_args) and _same(kwargs, want_kwargs)):
                raise Inconsistent(name)
            return copy.deepcopy(out)
        return call

    try:
        with replaced(mod, {name: replayer(name) for name in queue}):
            values = _run(ops, mod, arrays)
    except Inconsistent:
        return None
    if len(values) < len(ops) or values[-1] is None or any(queue.values()):
        return None
    return values


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and bool(
            np.array_equal(a, b, equal_nan=True))
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b

