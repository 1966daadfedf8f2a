"""mypy over the project, as pyproject.toml's [tool.mypy] configures it: strict on grader/, default on server/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tooling import missing_tool

PROJECT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_reports_no_error(tmp_path: Path) -> None:
    mypy = Path(sys.executable).with_name("mypy")
    if not mypy.exists() and shutil.which("mypy") is None:
        missing_tool("mypy is not installed (pip install --group test)")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"),
                           "--no-error-summary"], cwd=PROJECT, capture_output=True, text=True, timeout=900)
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert proc.returncode == 0 and not errors, "mypy found errors:\n" + "\n".join(errors or [proc.stdout, proc.stderr])
