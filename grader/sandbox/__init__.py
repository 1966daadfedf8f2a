"""bubblewrap + cgroups sandbox for student code."""

from grader.harness.protocol import Outcome
from grader.sandbox.errors import SandboxUnavailable
from grader.sandbox.process import RunLimits, SandboxProcess, host_backend

__all__ = ["Outcome", "RunLimits", "SandboxProcess", "SandboxUnavailable", "host_backend"]
