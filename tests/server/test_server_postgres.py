"""PostgreSQL: a real server (Debian's binaries), migrations, and the upload -> grade -> leaderboard path.

Skipped when the postgresql binaries or the psycopg driver are missing. Runs the server as the
`postgres` system user when the tests run as root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.server.pg import PostgresUnavailable, init_cluster, wait_ready
from tests.tooling import import_tool, missing_tool

pytestmark = [pytest.mark.integration]


@pytest.fixture
def cleanup():
    paths: list[Path] = []
    yield paths
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)


@pytest.fixture
def pg_url(tmp_path, h, cleanup, procs):
    import_tool("psycopg")
    # Not under pytest's tmp_path: that is private to root, and PostgreSQL must not run as root.
    root = Path(tempfile.mkdtemp(prefix="autograder-pg-"))
    cleanup.append(root)
    try:
        cluster = init_cluster(root, h.free_port())
    except PostgresUnavailable as exc:
        missing_tool(str(exc))
    procs.append(h.Proc("postgres", cluster.argv, dict(os.environ), tmp_path / "pg.log").start())
    h.wait_port(cluster.port, timeout=60)
    wait_ready(cluster.url)
    url = cluster.url
    return url


def test_postgres_migrations_upload_grade_leaderboard(pg_url, tmp_path, h):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.orm import Session

    import server.models  # noqa: F401
    from grader.result import CheckResult, CheckStatus, GradeResult
    from server import create_app
    from server.db import Base, make_engine, upgrade
    from server.services import accounts, leaderboard, reports
    from server.services import submissions as svc
    from server.services.assignments import ensure_assignment

    upgrade(pg_url)
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
    settings = h.make_settings(tmp_path / "instance", database_url=pg_url)
    sent: list[int] = []
    app = create_app(settings=settings, dispatch=lambda sid, d=0.0, lane="quick": sent.append(sid))
    with Session(engine, expire_on_commit=False) as s:
        alice, _ = accounts.add_user(s, "alice", password="alice-pass-1")
        s.commit()
        a = ensure_assignment(s, "rpz-cnn")
    c = app.test_client()
    h.login(c, "alice", "alice-pass-1")
    r = h.upload(c, h.tiny_zip())
    assert r.status_code == 302, r.text
    sid = int(r.headers["Location"].rsplit("/", 1)[1])
    assert sent == [sid]
    metrics = {"finetune.weighted": 0.75, "finetune.orig": 0.8, "finetune.aug": 0.7, "finetune.new": 0.6,
               "mynet.accuracy": 0.9}
    result = GradeResult.from_checks(assignment="rpz-cnn", checks=[CheckResult(
        id="c", target="Linear", status=CheckStatus.PASSED, points=6.0, max_points=6.0)], metrics=metrics,
        timings={}, notices=[]).to_dict()
    with Session(engine, expire_on_commit=False) as s:
        claim = svc.claim(s, settings, sid, hostname="w")
        assert svc.claim.__name__ and svc.finish(s, settings, sid, claim.token, result) == "graded"
        a = s.merge(a)
        rows = leaderboard.ranked(s, a)
        assert [(r.username, r.value, r.uploads) for r in rows] == [("alice", 0.75, 1)]
        rep = reports.report(s, a, flag_min_uploads=20)
        assert rep[0].passed and rep[0].points == 6.0
    board = c.get("/assignments/rpz-cnn/leaderboard.json").json
    assert board["rows"][0]["me"] and board["rows"][0]["metrics"]["finetune.orig"] == 0.8
    # The fair-share claim and positions (window function, correlated subqueries) on PostgreSQL.
    import io

    from server.services import lanes

    wake = lambda sid, d=0.0, lane="quick": None  # noqa: E731
    with Session(engine, expire_on_commit=False) as s:
        bob, _ = accounts.add_user(s, "bob", password="bob-pass-1")
        s.commit()
        a, alice = s.merge(a), s.merge(alice)
        up = [svc.submit_upload(s, settings, wake, user=u, assignment=a, stream=io.BytesIO(h.tiny_zip()),
                                filename="x.zip").id for u in (alice, alice, bob)]
        assert lanes.positions(s) == {up[0]: 1, up[2]: 2, up[1]: 3}
        first = svc.claim_next(s, settings, hostname="w1")
        second = svc.claim_next(s, settings, hostname="w2")
        assert (first.submission.id, second.submission.id) == (up[0], up[2])  # alice is busy: bob before her 2nd
    engine.dispose()
    from server.web import runtime

    runtime(app).engine.dispose()
