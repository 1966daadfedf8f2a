"""Readable, per-check text report of a `GradeResult` (what `autograder grade` and `autograder submit` print
without --json). Every string in a result may hold student text (file and folder names, exception messages),
so each is shown through `grader.terminal.visible`: control characters and bidi overrides escaped."""

from __future__ import annotations

from grader.result import CheckStatus, GradeResult, Status
from grader.terminal import visible, visible_lines

MARK = {CheckStatus.PASSED: "PASS", CheckStatus.FAILED: "FAIL", CheckStatus.ERROR: "ERROR",
        CheckStatus.SKIPPED: "SKIP"}


def render_text(result: GradeResult) -> str:
    lines = [f"Assignment {visible(result.assignment)}: {result.status}"]
    if result.status is not Status.GRADED:
        lines += [f"  {line}" for line in visible_lines(result.message)]
        return "\n".join(lines) + "\n"
    verdict = "passed" if result.passed else "not passed"
    lines[0] += f", {result.score:g} / {result.max_score:g} points, lab {verdict}"
    for notice in result.notices:
        lines.append(f"  note: {visible(notice)}")
    lines.append("")
    ids = [visible(c.id) for c in result.checks]
    width = max((len(i) for i in ids), default=10)
    for c, shown_id in zip(result.checks, ids, strict=True):
        took = (f"  reused from {visible(c.reused_from)}" if c.reused_from else
                f"  {c.seconds:.2f} s" if c.seconds is not None else "")
        lines.append(f"  {MARK[c.status]:<5} {shown_id:<{width}}  {c.points:>5g} / {c.max_points:<5g} "
                     f"[{visible(c.target)}]{took}")
        if c.message:
            lines.append(f"        {visible(c.message)}")
    shown = {k: v for k, v in result.metrics.items() if not k.startswith("sandbox.")}
    if shown:
        lines.append("")
        lines.append("  metrics: " + ", ".join(f"{visible(k)} = {v:.4f}" for k, v in shown.items()))
    if result.timings:
        lines.append("  timings: " + ", ".join(f"{visible(k)} = {v:.2f}" for k, v in result.timings.items()))
    return "\n".join(lines) + "\n"
