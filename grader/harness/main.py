"""Sandbox entry point: run the judge's op script against the student's code, stream raw results.

Runs inside bubblewrap as ``python -I /job/harness/main.py``. Reads /job/in/request.json and
/job/in/inputs.npz, imports student modules from /job/submission, and writes frames (see protocol.py and
wire.py) to the channel fd given as --channel-fd. Hidden image sets appear in /job/data only while the op that
needs them runs (the judge links them in when it sees that op start). On SIGUSR1 it dumps the stack to stdout
(the judge asks for it before it stops a hung call, to say where it hung). Everything it writes is untrusted
by construction: the judge validates and decides; it keeps its own clock.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import json
import os
import signal
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
JOB = Path(os.environ.get("NNAG_JOB", "/job"))
PACKAGE = "harness"
"""The name this folder is imported under in the sandbox (its modules import each other relatively)."""


def _package() -> ModuleType:
    """Import this folder as a package without putting its parent (/job) on sys.path."""
    spec = importlib.util.spec_from_file_location(PACKAGE, HERE / "__init__.py",
                                                  submodule_search_locations=[str(HERE)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    return package


def main() -> int:
    _package()
    import numpy as np
    from harness.ops import Interpreter, error_info, module_loader
    from harness.protocol import (
        Done,
        Failure,
        Frame,
        Hello,
        Outcome,
        Request,
        ResultFailure,
        ResultValue,
        Start,
    )
    from harness.wire import encode

    faulthandler.register(signal.SIGUSR1, file=sys.stdout, all_threads=False)
    fd = int(sys.argv[sys.argv.index("--channel-fd") + 1])
    channel = os.fdopen(os.dup(fd), "wb", buffering=0)
    os.close(fd)

    def send(frame: Frame) -> None:
        try:
            data = encode(frame.to_wire())
        except Exception as exc:  # a value the wire cannot carry
            assert isinstance(frame, ResultValue)
            data = encode(ResultFailure(group=frame.group, op=frame.op, failure=Failure(
                outcome=Outcome.FAILED, type="EncodeError", message=f"could not send result: {exc}")).to_wire())
        channel.write(data)

    request = json.loads((JOB / "in" / "request.json").read_text())
    with np.load(JOB / "in" / "inputs.npz", allow_pickle=False) as z:
        inputs = {k: z[k] for k in z.files}
    submission = JOB / "submission"
    interp = Interpreter(load_module=module_loader(submission), inputs=inputs,
                         data_dir=JOB / "data", submission_dir=submission)
    send(Hello(pid=os.getpid()))
    for g in Request.from_wire(request).groups:
        gi = g.index
        for i, op in enumerate(g.ops):
            send(Start(group=gi, op=i))
            try:
                value = interp.run(op)
            except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt are student faults too
                send(ResultFailure(group=gi, op=i, failure=error_info(exc, submission_dir=submission)))
                break
            send(ResultValue(group=gi, op=i, value=value))
    send(Done())
    channel.close()
    return 0


if __name__ == "__main__":
    os._exit(main())  # skip interpreter teardown: student atexit hooks and threads cannot delay us
