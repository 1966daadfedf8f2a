"""Issue 13: a check's verdict rides the one progress channel (POST /internal/submissions/N/progress): validated
with grader.result.CheckResult, every one kept (no rate limit), shown in the submission's JSON with the score so
far while running, cleared when the attempt ends (result, or a retry). The worker's real HTTP client against the
real web app on a real port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from grader.result import CheckResult, CheckStatus
from server.worker_client import InternalClient
from tests.server.ports import free_port, wait_port
from tests.server.test_server_lifecycle import graded


@pytest.fixture
def client(app, settings) -> Iterator[InternalClient]:
    port = free_port()
    srv = make_server("127.0.0.1", port, app, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    wait_port(port)
    yield InternalClient(f"http://127.0.0.1:{port}", settings.internal_secret, hostname="w1@test")
    srv.shutdown()
    srv.server_close()


def _state(db, sid: int) -> dict[str, Any]:
    from server.models import Submission
    from server.services import visibility

    db.expire_all()
    return visibility.state_dict(db, db.get(Submission, sid))


def _verdict(i: int, passed: bool = True) -> CheckResult:
    return CheckResult(id=f"numpy_nn.check{i}", target="Linear", status=CheckStatus.PASSED if passed else
                       CheckStatus.FAILED, points=1.0 if passed else 0.0, max_points=1.0,
                       message="" if passed else "<b>wrong</b>", seconds=0.01)


def test_every_verdict_is_kept_shown_and_cleared_with_the_attempt(client, as_user, h, db, settings):
    from server import schemas

    r = h.upload(as_user("alice"), h.tiny_zip())
    sid = int(r.headers["Location"].rsplit("/", 1)[1])
    claim = client.claim(sid)["claim"]
    for i in range(12):  # in a burst, faster than the progress rate limit (PROGRESS_EVERY_S)
        client.progress(sid, claim, None, _verdict(i, passed=i % 3 != 0))
    client.progress(sid, claim, None, _verdict(0, passed=True))  # one check, the latest wins
    s = _state(db, sid)
    assert [c["id"] for c in s["partial_checks"]] == [f"numpy_nn.check{i}" for i in (*range(1, 12), 0)]
    assert s["partial_score"] == 12 - 3
    assert schemas.Submission(**s).partial_checks[0] == _verdict(1)  # the API's model reads it back

    with pytest.raises(RuntimeError, match="HTTP 400"):  # not a CheckResult: refused, nothing stored
        client._request("POST", f"/internal/submissions/{sid}/progress",
                        {"claim": claim, "verdict": {"id": "x", "status": "bogus"}}, retry=False)
    assert len(_state(db, sid)["partial_checks"]) == 12

    client.fail(sid, claim, "the worker died")  # a retry: the next attempt starts from nothing
    s = _state(db, sid)
    assert s["status"] == "queued" and s["partial_checks"] == [] and s["partial_score"] is None
    from server.models import Submission

    assert db.get(Submission, sid).partial_checks is None
    db.get(Submission, sid).retry_at = None
    db.commit()
    claim = client.claim(sid)["claim"]
    client.progress(sid, claim, "numpy_nn.check0", _verdict(0))
    assert len(_state(db, sid)["partial_checks"]) == 1
    client.result(sid, claim, graded(0.8))
    s = _state(db, sid)
    assert s["status"] == "graded" and s["partial_checks"] == [] and db.get(Submission, sid).partial_checks is None
