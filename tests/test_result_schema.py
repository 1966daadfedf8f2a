"""The result JSON (schema 1) has one definition, grader.result's pydantic models: results round-trip through
JSON unchanged, the JSON is what schema 1 has always been byte for byte, JSON stored by older graders still reads,
hostile JSON is a ValueError (never another exception, never a non-finite number), and the API serves and
describes a submission's report with the same models."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.result import SCHEMA_VERSION, CheckResult, CheckStatus, GradeResult, Status
from tests.conftest import make_zip, reference_file

# Numbers as the engine and the judge hand them over: floats (NaN and infinities too), ints, None for seconds.
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 10**6))
texts = st.text(max_size=30)
check_results = st.builds(
    CheckResult, id=texts, target=texts, status=st.sampled_from(CheckStatus), points=numbers, max_points=numbers,
    message=texts, seconds=st.one_of(st.none(), numbers),
)
metric_maps = st.dictionaries(texts, st.one_of(numbers, st.none()), max_size=5)


@st.composite
def grade_results(draw: st.DrawFn) -> GradeResult:
    how = draw(st.sampled_from(["checks", "rejected", "error"]))
    if how == "checks":
        checks = draw(st.lists(check_results, max_size=6))
        ids = [c.id for c in checks]
        required = draw(st.one_of(st.none(), st.frozensets(st.sampled_from(ids)) if ids else st.just(frozenset())))
        return GradeResult.from_checks(assignment=draw(texts), checks=checks, metrics=draw(metric_maps),
                                       timings=draw(metric_maps), notices=draw(st.lists(texts, max_size=3)),
                                       required=required)
    if how == "rejected":
        return GradeResult.rejected(assignment=draw(texts), message=draw(texts), max_score=draw(numbers),
                                    timings=draw(metric_maps))
    return GradeResult.error(assignment=draw(texts), message=draw(texts), max_score=draw(numbers),
                             deterministic=draw(st.booleans()))


def _all_finite(d: dict[str, Any]) -> bool:
    floats = [d["score"], d["max_score"], *d["metrics"].values(), *d["timings"].values()]
    floats += [c[k] for c in d["checks"] for k in ("points", "max_points", "seconds") if k in c]
    return all(isinstance(f, float) and math.isfinite(f) for f in floats)


# --- round trips --------------------------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(grade_results())
def test_every_result_round_trips_through_its_json(result: GradeResult) -> None:
    text = result.to_json()
    d = json.loads(text)  # strict JSON: to_json refuses NaN, so every number in it is finite
    assert _all_finite(d)
    back = GradeResult.from_json(text)
    assert back == result and back.to_json() == text and GradeResult.from_dict(d).to_dict() == d
    assert GradeResult.from_json(result.to_json(indent=2)) == result


@pytest.mark.sandbox
def test_a_real_grading_round_trips(tmp_path, fast_settings, host_unharmed) -> None:
    """A result the engine made (numpy checks run in the sandbox, the torch ones missing their file)."""
    from grader.api import grade_submission

    z = make_zip(tmp_path / "numpy.zip", {"numpy_nn.py": reference_file("numpy_nn.py")})
    result = grade_submission(zip_path=z, assignment="rpz-cnn", settings=fast_settings,
                              only=["numpy_nn.ReLU.forward", "numpy_nn.Linear.backward", "pytorch_cnn.MyNet.build"])
    assert result.status is Status.GRADED and len(result.checks) == 3
    assert any(c.seconds is not None for c in result.checks) and any(c.seconds is None for c in result.checks)
    assert GradeResult.from_json(result.to_json()) == result
    assert GradeResult.from_dict(result.to_dict()).to_json() == result.to_json()


# --- the JSON is schema 1 as it has always been ---------------------------------------------------------------

GOLDEN = (
    '{"schema": 1, "assignment": "rpz-cnn", "status": "graded", "message": "", "score": 1.5, "max_score": 3.0, '
    '"passed": false, "checks": [{"id": "numpy_nn.Linear.backward", "target": "Linear", "status": "passed", '
    '"points": 1.5, "max_points": 1.5, "message": "", "seconds": 0.25}, {"id": "pytorch_cnn.MyNet.build", '
    '"target": "MyNet", "status": "skipped", "points": 0.0, "max_points": 1.5, "message": "no pytorch_cnn.py"}], '
    '"metrics": {"mynet.accuracy": 0.8821}, "timings": {"unpack_s": 0.01, "total_s": 10.2}, '
    '"notices": ["skipped __MACOSX/"]}'
)


def test_the_json_is_schema_1_byte_for_byte() -> None:
    """Key order ("schema" first, a check's fields in DESIGN.md's order), `seconds` only when something ran,
    `deterministic` only when true, NaN metrics dropped and NaN points zeroed: as the hand-written writer did."""
    result = GradeResult.from_checks(
        assignment="rpz-cnn", notices=["skipped __MACOSX/"],
        metrics={"mynet.accuracy": 0.8821, "finetune.weighted": float("nan")},
        timings={"unpack_s": 0.01, "total_s": 10.2, "sandbox_s": float("inf")},
        checks=[CheckResult(id="numpy_nn.Linear.backward", target="Linear", status=CheckStatus.PASSED, points=1.5,
                            max_points=1.5, seconds=0.25),
                CheckResult(id="pytorch_cnn.MyNet.build", target="MyNet", status=CheckStatus.SKIPPED,
                            points=float("nan"), max_points=1.5, message="no pytorch_cnn.py")])
    assert result.to_json() == GOLDEN
    assert GradeResult.from_json(GOLDEN).to_json() == GOLDEN
    assert result.schema == SCHEMA_VERSION == 1
    err = json.loads(GradeResult.error(assignment="x", message="bad spec", deterministic=True).to_json())
    assert list(err)[-2:] == ["notices", "deterministic"] and err["deterministic"] is True
    assert "deterministic" not in GradeResult.error(assignment="x", message="flaky").to_dict()


# JSON as older graders stored it: the first schema-1 writer (no "seconds", a NaN metric stored as null), and one
# from before "notices" existed.
OLD_STORED = [
    {"schema": 1, "assignment": "rpz-cnn", "status": "graded", "message": "", "score": 5.0, "max_score": 6.0,
     "passed": False, "checks": [{"id": "numpy_nn.Linear.forward", "target": "Linear", "status": "passed",
                                  "points": 1.0, "max_points": 1.0, "message": ""}],
     "metrics": {"mynet.accuracy": 0.88, "finetune.weighted": None}, "timings": {"total_s": 10.2}, "notices": []},
    {"schema": 1, "assignment": "rpz-cnn", "status": "rejected", "message": "The upload is not a zip file.",
     "score": 0.0, "max_score": 6.0, "passed": False, "checks": [], "metrics": {}, "timings": {}},
]


@pytest.mark.parametrize("stored", OLD_STORED)
def test_json_stored_by_older_graders_still_reads(stored: dict[str, Any]) -> None:
    result = GradeResult.from_dict(stored)
    assert result.assignment == "rpz-cnn" and result.max_score == 6.0
    assert None not in result.metrics.values() and result.notices == ()
    assert all(c.seconds is None for c in result.checks)
    assert GradeResult.from_json(result.to_json()) == result


# --- hostile or malformed JSON ------------------------------------------------------------------------------

GOOD: dict[str, Any] = {"schema": 1, "assignment": "a", "status": "graded", "checks": [
    {"id": "c", "target": "T", "status": "passed", "points": 1.0, "max_points": 1.0}]}


def _with_check(**changes: Any) -> dict[str, Any]:
    return {**GOOD, "checks": [{**GOOD["checks"][0], **changes}]}


@pytest.mark.parametrize(("case", "d"), [
    ("another schema", {**GOOD, "schema": 99}),
    ("no schema", {k: v for k, v in GOOD.items() if k != "schema"}),
    ("schema true", {**GOOD, "schema": True}),
    ("not an object", ["schema", 1]),
    ("no assignment", {k: v for k, v in GOOD.items() if k != "assignment"}),
    ("unknown status", {**GOOD, "status": "excellent"}),
    ("unknown check status", _with_check(status="great")),
    ("points not a number", _with_check(points="many")),
    ("points null", _with_check(points=None)),
    ("seconds not a number", _with_check(seconds=[1])),
    ("check without id", {**GOOD, "checks": [{"target": "T", "status": "passed", "points": 1, "max_points": 1}]}),
    ("id not a string", _with_check(id=5)),
    ("message null", _with_check(message=None)),
    ("checks not a list", {**GOOD, "checks": {"c": 1}}),
    ("metrics not an object", {**GOOD, "metrics": [0.5]}),
    ("notices not a list of strings", {**GOOD, "notices": [{"x": 1}]}),
])
def test_malformed_json_is_a_value_error(case: str, d: Any) -> None:
    with pytest.raises(ValueError):
        GradeResult.from_dict(d)


def test_non_finite_and_odd_numbers_are_zeroed_or_dropped_not_raised() -> None:
    d = {**_with_check(points=10**400, max_points="1.5", seconds=float("nan")), "score": float("-inf"),
         "metrics": {"nan": float("nan"), "null": None, "word": "x", "ok": 1, "big": 10**400},
         "timings": {"total_s": "inf"}, "deterministic": 1, "whatever": {"extra": "keys are ignored"}}
    r = GradeResult.from_dict(d)
    c = r.checks[0]
    assert (c.points, c.max_points, c.seconds, r.score) == (0.0, 1.5, None, 0.0)
    assert r.metrics == {"ok": 1.0} and r.timings == {} and r.deterministic is False  # only `true` stops retries
    assert _all_finite(json.loads(r.to_json()))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries(
    {"schema": st.just(1), "assignment": st.text(max_size=5), "status": st.sampled_from(Status)},
    optional={"checks": st.lists(st.dictionaries(st.sampled_from(
        ["id", "target", "status", "points", "max_points", "message", "seconds"]), json_values), max_size=3)
        | json_values, "metrics": json_values, "timings": json_values, "score": json_values,
        "notices": json_values, "passed": json_values, "deterministic": json_values}))
def test_any_json_reads_as_a_finite_result_or_is_a_value_error(d: dict[str, Any]) -> None:
    try:
        r = GradeResult.from_dict(d)
    except ValueError:
        return
    assert _all_finite(json.loads(r.to_json()))


# --- the server uses the same models ------------------------------------------------------------------------


def test_the_api_serves_and_describes_the_report_with_the_grader_s_model() -> None:
    from server import schemas

    assert schemas.Submission.model_fields["result"].annotation == GradeResult | None
    described = schemas.openapi(())["components"]["schemas"]
    assert described["GradeResult"]["properties"].keys() == GradeResult.model_json_schema(
        mode="serialization")["properties"].keys()
    assert list(described["CheckResult"]["properties"]) == ["id", "target", "status", "points", "max_points",
                                                            "message", "seconds", "reused_from"]
    assert described["CheckStatus"]["enum"] == [s.value for s in CheckStatus]
    state = {"id": 1, "assignment": "rpz-cnn", "upload_number": 1, "uploaded_at": "2026-01-01T00:00:00+00:00",
             "status": "graded", "filename": "a.zip", "queue_position": None, "current_check": "", "checks_done": 1,
             "checks_total": 1, "score": 5.0, "max_score": 6.0, "passed": False, "message": "",
             "finished_at": None}
    for stored in (*OLD_STORED, json.loads(GOLDEN)):  # what the database holds is served through the model
        body = schemas.Submission(**state, result=stored).body()
        assert body["result"] == {k: v for k, v in GradeResult.from_dict(stored).to_dict().items() if k in stored}
