"""Sandbox entry point: run the judge's op script against the student's code, stream raw results.

Runs inside bubblewrap as ``python -I /job/harness/main.py``. Reads /job/in/request.json and
/job/in/inputs.npz, imports student modules from /job/submission, and writes frames (see wire.py) to
the channel fd given as --channel-fd. Hidden image sets appear in /job/data only while the op that needs
them runs (the judge links them in when it sees that op start). On SIGUSR1 it dumps the stack to stdout
(the judge asks for it before it stops a hung call, to say where it hung). Everything it writes is untrusted
by construction: the judge validates and decides; it keeps its own clock.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
JOB = Path(os.environ.get("NNAG_JOB", "/job"))


def main() -> int:
    sys.path.insert(0, str(HERE))
    import numpy as np
    from ops import Interpreter, error_info, module_loader
    from wire import encode

    faulthandler.register(signal.SIGUSR1, file=sys.stdout, all_threads=False)
    fd = int(sys.argv[sys.argv.index("--channel-fd") + 1])
    channel = os.fdopen(os.dup(fd), "wb", buffering=0)
    os.close(fd)

    def send(msg: dict) -> None:
        try:
            frame = encode(msg)
        except Exception as exc:  # a value the wire cannot carry
            frame = encode({**{k: msg[k] for k in ("t", "g", "i") if k in msg},
                            "error": {"type": "EncodeError", "message": f"could not send result: {exc}",
                                      "where": "", "harness": True}})
        channel.write(frame)

    request = json.loads((JOB / "in" / "request.json").read_text())
    with np.load(JOB / "in" / "inputs.npz", allow_pickle=False) as z:
        inputs = {k: z[k] for k in z.files}
    submission = JOB / "submission"
    interp = Interpreter(load_module=module_loader(submission), inputs=inputs,
                         data_dir=JOB / "data", submission_dir=submission)
    send({"t": "hello", "pid": os.getpid()})
    for g in request["groups"]:
        gi = g["index"]
        for i, op in enumerate(g["ops"]):
            send({"t": "start", "g": gi, "i": i})
            try:
                value = interp.run(op)
            except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt are student faults too
                send({"t": "result", "g": gi, "i": i, "error": error_info(exc, submission_dir=submission)})
                break
            send({"t": "result", "g": gi, "i": i, "value": value})
    send({"t": "done"})
    channel.close()
    return 0


if __name__ == "__main__":
    os._exit(main())  # skip interpreter teardown: student atexit hooks and threads cannot delay us
