"""Errors of the sandbox layer."""


class SandboxUnavailable(RuntimeError):
    """The host cannot enforce a required limit (or lacks bubblewrap); the grader refuses to start."""
