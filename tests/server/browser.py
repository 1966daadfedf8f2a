"""Shared pieces of the headless-Chromium tests: Debian's chromium, the embedded server, logging in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def serve_embedded(tmp_path: Path, h: Any, procs: list, *, prepare: bool = True, timeout: float = 120.0) -> str:
    """`autograder serve` as the README runs it, on a free port with its own instance folder; its base URL."""
    port = h.free_port()
    env = dict(os.environ, AUTOGRADER_INSTANCE_DIR=str(tmp_path / "instance"), PYTHONUNBUFFERED="1")
    for k in ("AUTOGRADER_DATABASE_URL", "AUTOGRADER_BROKER_URL", "AUTOGRADER_INTERNAL_URL"):
        env.pop(k, None)
    argv = h.cli("serve", "--port", str(port), *(() if prepare else ("--no-prepare",)))
    p = h.Proc("serve", argv, env, tmp_path / "serve.log").start()
    procs.append(p)
    try:
        h.wait_port(port, timeout=timeout)
    except TimeoutError:
        pytest.fail("autograder serve did not start:\n" + p.output())
    return f"http://127.0.0.1:{port}"


def log_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/auth/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
