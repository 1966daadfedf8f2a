"""Past course data for scale tests and bench/load.py: many students with many graded submissions."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from server.models import Submission, User, utcnow


def seed_course(db: Session, assignment_id: int, *, students: int = 1000, submissions: int = 20000,
                seed: int = 7, prefix: str = "s") -> list[int]:
    """Insert `students` students (usernames s0000...) and `submissions` past submissions spread over the
    last 30 days (90 % graded with rpz-cnn leaderboard metrics, the rest rejected); returns the user ids."""
    rng = random.Random(seed)
    names = [f"{prefix}{i:04d}" for i in range(students)]
    db.execute(insert(User), [{"username": n, "name": f"Student {i}", "nickname": f"nick-{prefix}{i}",
                               "role": "student", "password_hash": "x"} for i, n in enumerate(names)])
    db.commit()
    ids = list(db.scalars(select(User.id).where(User.username.in_(names))))
    t0 = utcnow() - timedelta(days=30)
    step = timedelta(days=29) / max(1, submissions)
    rows, per_user = [], dict.fromkeys(ids, 0)
    for k in range(submissions):
        uid = rng.choice(ids)
        per_user[uid] += 1
        w = rng.random()
        metrics = {"finetune.weighted": w, "finetune.orig": w, "finetune.aug": w, "finetune.new": w,
                   "mynet.accuracy": 0.9}
        graded = rng.random() < 0.9
        at = t0 + k * step
        rows.append({"user_id": uid, "assignment_id": assignment_id, "upload_number": per_user[uid],
                     "stored_name": f"00/{k}.zip", "created_at": at, "queued_at": at, "started_at": at,
                     "finished_at": at + timedelta(seconds=20), "attempts": 1,
                     "status": "graded" if graded else "rejected",
                     "lb_value": w if graded else None, "score": 6.0 if graded else None, "max_score": 6.0,
                     "passed": graded,
                     "result_json": json.dumps({"schema": 1, "metrics": metrics, "checks": []}) if graded else None,
                     "lb_metrics": json.dumps(metrics) if graded else None})
    for i in range(0, len(rows), 2000):
        db.execute(insert(Submission), rows[i:i + 2000])
    db.commit()
    return ids
