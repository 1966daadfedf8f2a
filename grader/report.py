"""Readable, per-check text report of a `GradeResult` (what `autograder grade` prints without --json)."""

from __future__ import annotations

from grader.result import CheckStatus, GradeResult, Status

MARK = {CheckStatus.PASSED: "PASS", CheckStatus.FAILED: "FAIL", CheckStatus.ERROR: "ERROR",
        CheckStatus.SKIPPED: "SKIP"}


def render_text(result: GradeResult) -> str:
    lines = [f"Assignment {result.assignment}: {result.status}"]
    if result.status is not Status.GRADED:
        lines.append(f"  {result.message}")
        return "\n".join(lines) + "\n"
    verdict = "passed" if result.passed else "not passed"
    lines[0] += f", {result.score:g} / {result.max_score:g} points, lab {verdict}"
    for notice in result.notices:
        lines.append(f"  note: {notice}")
    lines.append("")
    width = max((len(c.id) for c in result.checks), default=10)
    for c in result.checks:
        took = f"  {c.seconds:.2f} s" if c.seconds is not None else ""
        lines.append(f"  {MARK[c.status]:<5} {c.id:<{width}}  {c.points:>5g} / {c.max_points:<5g} [{c.target}]{took}")
        if c.message:
            lines.append(f"        {c.message}")
    shown = {k: v for k, v in result.metrics.items() if not k.startswith("sandbox.")}
    if shown:
        lines.append("")
        lines.append("  metrics: " + ", ".join(f"{k} = {v:.4f}" for k, v in shown.items()))
    if result.timings:
        lines.append("  timings: " + ", ".join(f"{k} = {v:.2f}" for k, v in result.timings.items()))
    return "\n".join(lines) + "\n"
