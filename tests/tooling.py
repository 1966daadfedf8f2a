"""Tools of the host that tests need (redis-server, Chromium, nginx, PostgreSQL, network namespaces, cgroups,
python3-seccomp, ...): a test is skipped where one is missing, except under CI (the environment variable CI set,
as .ci/run does), where scripts/setup.sh --test installs every one of them and a missing tool fails the test."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_tool(reason: str) -> NoReturn:
    """Skip the test for `reason`; under CI fail it."""
    if under_ci():
        pytest.fail(f"{reason} (under CI every tool the tests use must be there: scripts/setup.sh --test)",
                    pytrace=False)
    pytest.skip(reason)


def import_tool(module: str) -> ModuleType:
    """`module` imported, or `missing_tool`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing_tool(f"{module} cannot be imported: {exc}")
