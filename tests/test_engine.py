"""The engine end to end: rejections, missing files, host refusal, torch-side hostile input, CLI contract."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from grader.api import grade_submission
from grader.result import CheckStatus, GradeResult, Status
from tests.conftest import check, make_zip, reference_file

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("host_unharmed")]

NUMPY_ONLY = {"numpy_nn.py": reference_file("numpy_nn.py")}


def _zip_bytes(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for info, data in entries:
            z.writestr(info, data)
    return buf.getvalue()


def _symlink_member() -> bytes:
    info = zipfile.ZipInfo("numpy_nn.py")
    info.external_attr = (0o120777 << 16)
    return _zip_bytes([(info, b"/etc/passwd")])


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("not a zip", b"this is not a zip file at all" * 10, "not a zip"),
        ("zip slip", _zip_bytes([("../numpy_nn.py", b"x"), ("numpy_nn.py", b"y")]), "unsafe path"),
        ("absolute path", _zip_bytes([("/etc/numpy_nn.py", b"x")]), "unsafe path"),
        ("symlink member", _symlink_member(), "symbolic link"),
        ("tens of thousands of members", _zip_bytes([(f"f{i}.txt", b"") for i in range(30000)]), "entries"),
    ],
)
def test_unusable_uploads_are_rejected_with_a_clear_message(tmp_path, fast_settings, name, data, words):
    z = tmp_path / "upload.zip"
    z.write_bytes(data)
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings)
    assert result.status is Status.REJECTED, name
    assert words in result.message, result.message
    assert result.exit_code == 2
    assert result.checks == ()
    assert list(fast_settings.work_dir.glob("job-*")) == []


def test_zip_bomb_is_rejected(tmp_path, fast_settings):
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("numpy_nn.py", b"\0" * (64 * 2**20))
    cfg = fast_settings.with_(limit_overrides={**fast_settings.limit_overrides, "unpacked_bytes": 16 * 2**20})
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=cfg)
    assert result.status is Status.REJECTED
    assert "unpacks to" in result.message


def test_zip_without_any_expected_file_is_rejected(tmp_path, fast_settings):
    z = make_zip(tmp_path / "x.zip", {"cnn.ipynb": "{}", "NumPy_nn.py": "x = 1"})
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings)
    assert result.status is Status.REJECTED
    assert "numpy_nn.py" in result.message and "letter case" in result.message


def test_files_in_one_folder_are_graded_with_a_notice(tmp_path, fast_settings):
    z = make_zip(tmp_path / "f.zip", {"alice_hw/numpy_nn.py": reference_file("numpy_nn.py")})
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings)
    assert result.status is Status.GRADED
    assert any("alice_hw" in n for n in result.notices)
    assert check(result, "numpy_nn.Linear.backward").status is CheckStatus.PASSED
    # the files that are not in that folder are reported missing from it, not from the zip's root
    assert check(result, "pytorch_cnn.MyNet.checkpoint").message == (
        "pytorch_cnn.py and model.pt are missing from your zip (looked for in the folder 'alice_hw/' with your other files)")


def test_missing_files_fail_exactly_the_checks_that_need_them(grade):
    result = grade(NUMPY_ONLY)
    numpy_checks = [c for c in result.checks if c.id.startswith("numpy_nn.")]
    torch_checks = [c for c in result.checks if c.id.startswith("pytorch_cnn.")]
    assert all(c.status is CheckStatus.PASSED for c in numpy_checks)
    assert all(c.status is CheckStatus.FAILED and "pytorch_cnn.py" in c.message for c in torch_checks)
    assert result.score == pytest.approx(3.0)
    assert result.max_score == pytest.approx(6.0)
    assert not result.passed


def test_host_without_limits_refuses_and_says_which(tmp_path, fast_settings):
    from grader.sandbox.process import host_backend

    host_backend.cache_clear()
    fake_root = tmp_path / "cgroup"
    (fake_root / "memory").mkdir(parents=True)  # a hierarchy without controllers
    cfg = fast_settings.with_(cgroup_root=fake_root)
    z = make_zip(tmp_path / "a.zip", NUMPY_ONLY)
    try:
        result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=cfg)
    finally:
        host_backend.cache_clear()
    assert result.status is Status.ERROR
    assert result.exit_code == 1
    assert "refuses" in result.message and "memory limit" in result.message and "process limit" in result.message


def test_host_without_bubblewrap_refuses(tmp_path, fast_settings):
    cfg = fast_settings.with_(bwrap="/nonexistent/bwrap")
    result = grade_submission(zip_path=make_zip(tmp_path / "a.zip", NUMPY_ONLY), assignment="rpz-cnn", settings=cfg)
    assert result.status is Status.ERROR
    assert "bubblewrap" in result.message


def test_unknown_assignment_is_an_error(tmp_path, fast_settings):
    result = grade_submission(zip_path=make_zip(tmp_path / "a.zip", NUMPY_ONLY), assignment="nope",
                              settings=fast_settings)
    assert result.status is Status.ERROR and "unknown assignment" in result.message


def test_cli_json_and_exit_codes(tmp_path, fast_settings):
    env = {"AUTOGRADER_WORK_DIR": str(fast_settings.work_dir), "PATH": "/usr/bin:/bin",
           "AUTOGRADER_LIMITS": ",".join(f"{k}={v}" for k, v in fast_settings.limit_overrides.items())}
    good = make_zip(tmp_path / "good.zip", NUMPY_ONLY)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    cmd = [sys.executable, "-m", "grader.cli", "grade"]
    p = subprocess.run([*cmd, str(good), "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0
    parsed = GradeResult.from_dict(json.loads(p.stdout))
    assert parsed.status is Status.GRADED and parsed.score == pytest.approx(3.0)
    p = subprocess.run([*cmd, str(bad), "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2 and json.loads(p.stdout)["status"] == "rejected"
    p = subprocess.run([*cmd, str(good)], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0
    assert "PASS  numpy_nn.Linear.backward" in p.stdout and "FAIL  pytorch_cnn.MyNet.build" in p.stdout


# ---------------------------------------------------------------------------------------------- torch side
class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: D105 - runs `touch marker` when unpickled
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def torch_submission() -> dict[str, bytes]:
    return {"numpy_nn.py": reference_file("numpy_nn.py"), "pytorch_cnn.py": reference_file("pytorch_cnn.py")}


@pytest.mark.slow
def test_code_executing_pickles_are_refused(grade, torch_submission, tmp_path):
    import torch

    marker = f"/tmp/pwned-{uuid.uuid4().hex}"
    raw = pickle.dumps({"conv.weight": _Exploit(marker)})
    buf = io.BytesIO()
    torch.save({"fc.weight": _Exploit(marker)}, buf)
    result = grade({**torch_submission, "model.pt": raw, "finetuned.pt": buf.getvalue()})
    for cid in ("pytorch_cnn.MyNet.checkpoint", "pytorch_cnn.FinetuneNet.checkpoint"):
        c = check(result, cid)
        assert c.status is CheckStatus.FAILED
        assert "weights_only" in c.message, c.message
    assert not Path(marker).exists()


@pytest.mark.slow
def test_cuda_calls_and_downloads_get_clear_messages(grade, torch_submission):
    src = torch_submission["pytorch_cnn.py"].decode()
    src = src.replace("class MyNet(nn.Module):", "class MyNet(nn.Module):\n    device = 'cuda'", 1)
    src += """

_OldMyNet = MyNet
class MyNet(_OldMyNet):
    def forward(self, x):
        return super().forward(x.cuda())


_OldFinetune = FinetuneNet
class FinetuneNet(_OldFinetune):
    def __init__(self, load_pretrained=False):
        import torchvision
        super().__init__(load_pretrained)
        torchvision.models.mobilenet_v2(weights=torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1)
"""
    result = grade({**torch_submission, "pytorch_cnn.py": src.encode()})
    build = check(result, "pytorch_cnn.MyNet.build")
    assert build.status is CheckStatus.FAILED
    assert "no GPU" in build.message, build.message
    ft = check(result, "pytorch_cnn.FinetuneNet.build")
    assert ft.status is CheckStatus.FAILED
    assert "no network" in ft.message and "must not download" in ft.message, ft.message


@pytest.mark.sandbox
def test_each_check_reports_the_time_the_students_code_took(tmp_path, fast_settings):
    slow = reference_file("numpy_nn.py") + (
        b"\n_orig_backward = ReLU.backward\n"
        b"def _slow_backward(self, *a, **k):\n    import time\n    time.sleep(0.3)\n    return _orig_backward(self, *a, **k)\n"
        b"ReLU.backward = _slow_backward\n")
    z = make_zip(tmp_path / "slow.zip", {"numpy_nn.py": slow})
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings,
                              only=["numpy_nn.ReLU.backward", "numpy_nn.Linear.forward", "pytorch_cnn.MyNet.build"])
    by_id = {c.id: c for c in result.checks}
    assert by_id["numpy_nn.ReLU.backward"].status is CheckStatus.PASSED
    assert by_id["numpy_nn.ReLU.backward"].seconds >= 0.3
    assert by_id["numpy_nn.Linear.forward"].seconds is not None and by_id["numpy_nn.Linear.forward"].seconds < 0.3
    assert by_id["pytorch_cnn.MyNet.build"].seconds is None  # pytorch_cnn.py is missing: nothing ran
    d = result.to_dict()
    mynet = next(c for c in d["checks"] if c["id"] == "pytorch_cnn.MyNet.build")
    assert "seconds" not in mynet
    assert GradeResult.from_dict(json.loads(result.to_json())) == result
    from grader.report import render_text

    assert any(line.rstrip().endswith(" s") and "numpy_nn.ReLU.backward" in line for line in render_text(result).splitlines())
