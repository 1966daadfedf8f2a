"""The one exception the data package raises for data that is missing, stale or malformed."""

from __future__ import annotations


class DataUnavailable(RuntimeError):
    """Hidden data is missing, stale or unusable; the message says what the instructor should do."""
