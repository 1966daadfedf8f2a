"""A wheel built from the repository (`python -m build --wheel`) installs in a fresh venv and grades the
reference outside the checkout: the assignment folders (specs, reference solutions, checkpoints, notebooks)
are package data, nothing is read from the source tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from grader.settings import GraderSettings

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "cmu-16720-hw5"
"""Small and NumPy only (nn.py and q3_weights.npz), graded on a real hidden set (the NIST36 stand-in)."""


def run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{cmd} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


def test_a_wheel_installed_in_a_fresh_venv_grades_the_reference(tmp_path: Path,
                                                                 fast_settings: GraderSettings) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout to know its files")
    src = tmp_path / "src"  # the repository's files (tracked and new, not ignored), not the checkout's build/
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT).split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file() and not (ROOT / name).is_symlink():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(src)],
        cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("nn_autograder-*.whl")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=tmp_path).strip())
    # The shared venv's libraries (torch, numpy, ...) without reinstalling them: a plain path entry, so its own
    # .pth files (the editable install of this checkout among them) are not read.
    (site / "shared_libraries.pth").write_text(str(Path(sysconfig.get_paths()["purelib"]).resolve()) + "\n")
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("AUTOGRADER_")}
    env.update({
        "AUTOGRADER_HIDDEN_DATA": str(fast_settings.hidden_data),  # the checkout's prepared hidden sets
        "AUTOGRADER_SHARED_DATA": str(fast_settings.shared_data),
        # The sandbox runs the shared venv, which does not hold the installed grader (nor its reference solutions)
        "AUTOGRADER_SANDBOX_PYTHON": str(fast_settings.python),
        "AUTOGRADER_WORK_DIR": str(fast_settings.work_dir),
        "AUTOGRADER_CGROUP_NAME": fast_settings.cgroup_name,
    })
    where = json.loads(run([str(python), "-c", "import json, sys; from grader.assignments import spec; "
                            "print(json.dumps([spec.ASSIGNMENTS_DIR.as_posix(), sys.path]))"], cwd=outside, env=env))
    assert where[0] == (site / "grader" / "assignments").as_posix()
    assert ROOT.resolve() not in {(outside / p).resolve() for p in where[1]}, "the checkout is on the path"

    zip_path = outside / "reference.zip"
    run([str(python), "-c", "import sys; from pathlib import Path; from grader.assignments.build import "
         "build_submission_zip as b; b(sys.argv[1], Path(sys.argv[2]))", ASSIGNMENT, str(zip_path)],
        cwd=outside, env=env)
    listed = run([str(venv / "bin" / "autograder"), "assignment", "list"], cwd=outside, env=env)
    assert ASSIGNMENT in listed and "rpz-cnn" in listed
    checked = run([str(venv / "bin" / "autograder"), "assignment", "check", ASSIGNMENT], cwd=outside, env=env)
    assert checked.strip().endswith(": ok") and checked.startswith(str(site)), checked
    out = run([str(venv / "bin" / "autograder"), "grade", str(zip_path), "--assignment", ASSIGNMENT, "--json"],
              cwd=outside, env=env)
    result = json.loads(out)
    not_passed = {c["id"]: c["message"] for c in result["checks"] if c["status"] != "passed"}
    assert (result["status"], not_passed) == ("graded", {})
    assert result["score"] == result["max_score"] == 28
