"""The JSON API's response bodies as pydantic models: the API serialises through them and its OpenAPI
description (`openapi`) is generated from them and from the API blueprint's URL rules, so neither can drift.

A submission's report is the grader's own result model (`grader.result.GradeResult`, schema 1), not a copy of
it: what the grader writes, what the web app stores and what the API serves and describes is one definition."""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from grader.result import CheckResult, GradeResult

Status = Literal["queued", "running", "graded", "rejected", "error"]


def _timestamp() -> Any:
    return Field(description="ISO 8601, UTC", json_schema_extra={"format": "date-time"})



class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def body(self) -> dict[str, Any]:
        """The JSON body: fields a view did not set (the instructor-only ones for a student) are left out."""
        return self.model_dump(mode="json", exclude_unset=True)


class Error(_Body):
    error: str
    limit_bytes: int | None = Field(default=None, description="with 413: the upload limit in bytes")


class Submission(_Body):
    """A submission's state and, once finished, its report."""

    id: int
    assignment: str
    upload_number: int
    uploaded_at: str = _timestamp()
    status: Status
    filename: str = Field(description="the uploaded file's name as sent")
    queue_position: int | None = Field(description="1 = next to be graded, in fair-share order (each student's "
                                        "oldest waiting upload first, by how long they have waited for a "
                                        "verdict); null unless queued")
    eta_s: float | None = Field(default=None, description="seconds until the verdict: median of the assignment's "
                                "recent grading times x position / active workers; null unless queued")
    current_check: str = Field(description="the check running now; empty unless running")
    checks_done: int
    checks_total: int
    partial_checks: list[CheckResult] = Field(default_factory=list, description=(
        "while running: the verdicts judged so far, in the order they came (the final result may still add to a "
        "message); in a slow phase (queued or running) the quick phase's verdicts first; empty otherwise"))
    partial_score: float | None = Field(default=None, description="while running or in a slow phase: the points "
                                        "of partial_checks")
    phase: Literal["quick", "slow"] | None = Field(default=None, description=(
        "while queued or running, in a grading done in two phases: quick (interfaces, layers, gradients, builds, "
        "checkpoints) or slow (hidden-set accuracy, after the quick verdicts are in); null for a grading in one "
        "run and once finished"))
    score: float | None
    max_score: float | None
    passed: bool | None
    message: str = Field(description="for the student: why it was rejected or failed")
    result: GradeResult | None = Field(description="the grader's result JSON (schema 1) once graded or rejected")
    finished_at: str | None = _timestamp()
    attempts: int | None = Field(default=None, description="instructors only")
    worker: str | None = Field(default=None, description="instructors only")
    task_id: str | None = Field(default=None, description="instructors only")
    error_reason: str | None = Field(default=None, description="instructors only: why grading failed")
    user: str | None = Field(default=None, description="instructors only: the student's username")


class Uploaded(Submission):
    """The new submission, with the uploader's count."""

    uploads_used: int
    upload_limit: int


class Submissions(_Body):
    submissions: list[Submission] = Field(description="yours, newest first; `result` is null here")


class AssignmentInfo(_Body):
    name: str
    title: str
    open: bool
    upload_limit: int
    uploads_used: int
    max_upload_bytes: int
    closes_at: str | None = _timestamp()


class Assignments(_Body):
    assignments: list[AssignmentInfo]


class Column(_Body):
    metric: str
    label: str


class LeaderboardRow(_Body):
    rank: int
    name: str | None
    me: bool
    value: float
    metrics: dict[str, float | None]
    uploads: int
    at: str = _timestamp()
    submission_id: int | None = Field(description="yours, or any for instructors; else null")


class Leaderboard(_Body):
    assignment: str
    title: str
    counts: Literal["best", "latest"]
    visibility: Literal["public", "anonymous", "hidden"]
    metric: str | None
    columns: list[Column]
    challenge_deadline: str | None = _timestamp()
    hidden: bool = Field(description="true: hidden from you until the challenge deadline (rows empty)")
    rows: list[LeaderboardRow]
    generated_at: str = _timestamp()


OPERATIONS: dict[tuple[str, str], tuple[str, dict[int, type[_Body]]]] = {
    ("GET", "api.assignments"): ("Assignments with your upload count", {200: Assignments, 401: Error}),
    ("POST", "api.upload"): ("Upload a submission zip (multipart form field `file`)", {
        201: Uploaded, 400: Error, 401: Error, 403: Error, 404: Error, 409: Error, 413: Error, 429: Error}),
    ("GET", "api.submissions"): ("Your submissions, newest first", {200: Submissions, 401: Error}),
    ("GET", "api.submission"): ("A submission's state and, once finished, its report",
                                {200: Submission, 401: Error, 403: Error, 404: Error}),
    ("GET", "api.leaderboard"): ("The leaderboard as you may see it", {200: Leaderboard, 401: Error, 404: Error}),
}
"""(method, endpoint) -> (summary, response model by status): what each API view answers."""

_RULE_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def openapi_path(rule: str) -> str:
    """A Flask rule in OpenAPI's notation: /a/<int:id> -> /a/{id}."""
    return _RULE_PARAM.sub(r"{\2}", rule)


@cache
def openapi(rules: tuple[tuple[str, str, str], ...]) -> dict[str, Any]:
    """The OpenAPI 3.1 description for the API's URL rules, given as (rule, method, endpoint)."""
    models = sorted({m for _, responses in OPERATIONS.values() for m in responses.values()}, key=lambda m: m.__name__)
    _, defs = models_json_schema([(m, "serialization") for m in models], ref_template="#/components/schemas/{model}")
    paths: dict[str, Any] = {}
    for rule, method, endpoint in rules:
        if (method, endpoint) not in OPERATIONS:
            continue
        summary, responses = OPERATIONS[(method, endpoint)]
        op: dict[str, Any] = {"summary": summary, "operationId": endpoint.removeprefix("api."), "responses": {
            str(code): {"description": model.__doc__.splitlines()[0] if model.__doc__ else model.__name__,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
            for code, model in sorted(responses.items())}}
        params = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "integer" if conv == "int" else "string"}}
                  for conv, name in _RULE_PARAM.findall(rule)]
        if params:
            op["parameters"] = params
        if method == "POST":
            op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"]}}}}
        paths.setdefault(openapi_path(rule), {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "nn-autograder API", "version": "1",
                 "description": "Upload submissions, follow their grading, read reports and the leaderboard. "
                                "Authenticate with `Authorization: Bearer <token>` (create one on /auth/tokens "
                                "or with `autograder token create NAME`)."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": defs["$defs"]},
        "security": [{"bearer": []}],
        "paths": paths,
    }
