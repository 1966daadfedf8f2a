"""Assignments: one folder each (here, or in AUTOGRADER_ASSIGNMENT_DIRS) holding its declarative spec
(assignment.toml), reference solution, student-style references, mutants and scripts."""

from grader.assignments.spec import (
    AssignmentSpec,
    CheckSpec,
    InvalidSpec,
    LeaderboardColumn,
    Limits,
    UnknownAssignment,
    assignment_folders,
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
    "assignment_folders",
    "list_assignments",
    "load_assignment",
]
