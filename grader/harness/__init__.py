"""Code that runs inside the sandbox (and, for ops.py and wire.py, also in the judge)."""
