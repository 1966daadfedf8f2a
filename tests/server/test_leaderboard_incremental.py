"""A cached leaderboard re-ranks only the students whose submissions changed, and always agrees with a
full ranking of the database."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from server.models import Submission, utcnow
from server.services import leaderboard
from server.services.submissions import bump_leaderboard
from tests.server.seeding import seed_course


def _key(db, a, counts: str):
    return (str(db.get_bind().url), a.id, counts, "", False)


def test_patched_ranking_equals_a_full_ranking_through_random_changes(db, h):
    a = h.get_assignment(db)
    users = seed_course(db, a.id, students=300, submissions=3000)
    rng = random.Random(11)
    for counts in ("best", "latest"):
        leaderboard.ranked(db, a, counts=counts)
    full_at = {c: leaderboard._CACHE[_key(db, a, c)].full_at for c in ("best", "latest")}
    subs = list(db.scalars(select(Submission).where(Submission.assignment_id == a.id)))
    next_upload = {u: 1000 for u in users}
    for _step in range(25):
        for _ in range(rng.randint(1, 6)):
            kind = rng.random()
            if kind < 0.4:  # a result arrives (or a regrade changes it)
                s = rng.choice(subs)
                s.lb_value = rng.choice([None, rng.random(), 0.5])  # 0.5: ties, decided by time then id
                s.lb_metrics = "{}" if s.lb_value is not None else None
                bump_leaderboard(db, a.id, s)
            else:  # a new upload, queued or already graded
                u = rng.choice(users)
                next_upload[u] += 1
                s = Submission(user_id=u, assignment_id=a.id, upload_number=next_upload[u], stored_name="x.zip",
                               created_at=utcnow() - timedelta(seconds=rng.randint(0, 10**6)),
                               lb_value=rng.choice([None, rng.random()]), lb_metrics="{}")
                db.add(s)
                db.flush()
                subs.append(s)
                bump_leaderboard(db, a.id, s)
        db.commit()
        for counts in ("best", "latest"):
            got = leaderboard.ranked(db, a, counts=counts)
            want = leaderboard._ranked(db, a, counts=counts, cutoff=None, passed_only=False)
            assert got == want, f"step {_step}, {counts}"
            assert leaderboard._CACHE[_key(db, a, counts)].full_at == full_at[counts], "ranked in full, not patched"
    assert [r.rank for r in got] == list(range(1, len(got) + 1))


def test_many_changes_or_an_old_cache_rank_in_full(db, h, monkeypatch):
    a = h.get_assignment(db)
    seed_course(db, a.id, students=50, submissions=400)
    leaderboard.ranked(db, a, counts="best")
    first = leaderboard._CACHE[_key(db, a, "best")].full_at
    monkeypatch.setattr(leaderboard, "MAX_PATCH_STUDENTS", 3)
    for s in db.scalars(select(Submission).where(Submission.assignment_id == a.id).limit(40)):
        s.lb_value = 0.99
        bump_leaderboard(db, a.id, s)
    db.commit()
    got = leaderboard.ranked(db, a, counts="best")
    assert leaderboard._CACHE[_key(db, a, "best")].full_at > first
    assert got == leaderboard._ranked(db, a, counts="best", cutoff=None, passed_only=False)
