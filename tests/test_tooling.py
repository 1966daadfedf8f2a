"""Under CI (the variable CI set, as .ci/run does) a test whose tool is missing fails; elsewhere it is skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
NEEDS = '''
from tests.tooling import import_tool, missing_tool

def test_needs_a_tool():
    missing_tool("frobnicator is not installed")

def test_needs_a_module():
    import_tool("no_such_module_for_the_tests")
'''


@pytest.mark.parametrize(("ci", "outcome"), [(None, "2 skipped"), ("1", "2 failed"), ("true", "2 failed"),
                                             ("0", "2 skipped"), ("", "2 skipped")])
def test_a_missing_tool_fails_under_ci_and_is_skipped_elsewhere(tmp_path, ci, outcome):
    test = tmp_path / "test_needs.py"
    test.write_text(NEEDS)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci is not None else {})
    env["PYTHONPATH"] = str(PROJECT)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                          str(test)], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert outcome in out.stdout, out.stdout + out.stderr
    if "failed" in outcome:
        assert "frobnicator is not installed (under CI every tool" in out.stdout
