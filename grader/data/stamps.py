"""SOURCE.json: the stamp prepare writes into each source folder it creates (where it came from; for AUG its key)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SOURCE_STAMP = "SOURCE.json"


def write_stamp(folder: Path, data: dict[str, Any]) -> None:
    stamp = {**data, "prepared": datetime.now(UTC).isoformat(timespec="seconds")}
    (folder / SOURCE_STAMP).write_text(json.dumps(stamp, indent=1) + "\n")


def read_stamp(folder: Path) -> dict[str, Any] | None:
    try:
        stamp = json.loads((folder / SOURCE_STAMP).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return stamp if isinstance(stamp, dict) else None


def origin(folder: Path) -> str:
    """Where a source folder came from, or that the instructor supplied it (no stamp)."""
    stamp = read_stamp(folder)
    if stamp and "origin" in stamp:
        return str(stamp["origin"])
    return f"supplied by the instructor (no {SOURCE_STAMP})"
