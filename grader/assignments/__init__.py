"""Assignment specs: one declarative TOML file per assignment in this folder."""

from grader.assignments.spec import (
    AssignmentSpec,
    CheckSpec,
    InvalidSpec,
    LeaderboardColumn,
    Limits,
    UnknownAssignment,
    list_assignments,
    load_assignment,
)

__all__ = [
    "AssignmentSpec",
    "CheckSpec",
    "InvalidSpec",
    "LeaderboardColumn",
    "Limits",
    "UnknownAssignment",
    "list_assignments",
    "load_assignment",
]
