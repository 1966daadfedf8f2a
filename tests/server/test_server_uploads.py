"""Uploads: stored under generated names outside served folders; every refusal stores nothing."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from server.models import Submission, utcnow
from server.services import submissions as svc


def count(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count(Submission.id))) or 0


def test_upload_is_stored_and_queued(as_user, db, h, settings):
    c = as_user("alice")
    r = h.upload(c, h.tiny_zip(), filename="../../etc/evil name.zip")
    assert r.status_code == 302 and r.headers["Location"].startswith("/submissions/")
    sub = db.scalars(select(Submission)).one()
    assert sub.status == "queued" and sub.upload_number == 1 and sub.enqueued_at is not None
    assert sub.original_filename == "evil name.zip"
    files = h.files_under(settings.upload_dir)
    assert len(files) == 1 and files[0].name != "evil name.zip" and files[0].read_bytes() == h.tiny_zip()
    static = h.PROJECT / "server" / "static"
    assert static not in files[0].parents and settings.upload_dir.resolve() in files[0].resolve().parents
    page = c.get(r.headers["Location"])
    assert page.status_code == 200 and "queued" in page.text
    state = c.get(f"/submissions/{sub.id}.json").json
    assert state["status"] == "queued" and state["queue_position"] == 1


def test_upload_count_shown(as_user, db, h):
    c = as_user("alice")
    for _ in range(3):
        h.upload(c, h.tiny_zip())
    assert "3 of 100 uploads used" in c.get("/assignments/rpz-cnn").text


def test_too_large_refused_with_413_naming_limit(as_user, db, h, settings):
    a = h.get_assignment(db)
    a.max_upload_bytes = 1024
    db.commit()
    c = as_user("alice")
    r = h.upload(c, b"x" * 200_000)
    assert r.status_code == 413 and "the limit is 1 kB" in r.text
    assert count(db) == 0 and h.files_under(settings.upload_dir) == []


def test_slightly_too_large_caught_while_streaming(as_user, db, h, settings):
    a = h.get_assignment(db)
    a.max_upload_bytes = 1000
    db.commit()
    r = h.upload(as_user("alice"), b"y" * 1500)  # passes the Content-Length pre-check (form overhead)
    assert r.status_code == 413 and "1000 bytes" in r.text
    assert count(db) == 0 and h.files_under(settings.upload_dir) == []


def test_global_cap_413(app, as_user, h, db, settings):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    a = h.get_assignment(db)
    a.max_upload_bytes = 10**9
    db.commit()
    c = as_user("alice")
    token = h.csrf_of(c.get("/auth/tokens").text)
    r = c.post("/auth/tokens", data={"csrf_token": token, "name": "x" * 5000})
    assert r.status_code == 413 and "limit" in r.text


def test_upload_limit_reached(as_user, db, h, settings):
    a = h.get_assignment(db)
    a.upload_limit = 2
    db.commit()
    c = as_user("alice")
    assert h.upload(c, h.tiny_zip()).status_code == 302
    assert h.upload(c, h.tiny_zip()).status_code == 302
    r = h.upload(c, h.tiny_zip())
    assert r.status_code == 429 and "all 2 of 2 uploads" in r.text
    assert count(db) == 2 and len(h.files_under(settings.upload_dir)) == 2
    assert h.upload(as_user("bob"), h.tiny_zip()).status_code == 302  # per student


@pytest.mark.parametrize(("field", "delta", "words"), [("closes_at", -1, "closed at"), ("opens_at", +1, "not open yet")])
def test_closed_or_not_yet_open(as_user, db, h, settings, field, delta, words):
    a = h.get_assignment(db)
    setattr(a, field, utcnow() + timedelta(hours=delta))
    db.commit()
    r = h.upload(as_user("alice"), h.tiny_zip())
    assert r.status_code == 403 and words in r.text
    assert count(db) == 0 and h.files_under(settings.upload_dir) == []


def test_empty_and_missing_file(as_user, db, h, settings):
    c = as_user("alice")
    r = h.upload(c, b"")
    assert r.status_code == 400 and "empty" in r.text
    token = h.csrf_of(c.get("/assignments/rpz-cnn").text)
    r = c.post("/assignments/rpz-cnn/upload", data={"csrf_token": token}, content_type="multipart/form-data")
    assert r.status_code == 400 and "Choose a zip file" in r.text
    assert count(db) == 0 and h.files_under(settings.upload_dir) == []


def test_unknown_assignment_404(as_user, h):
    assert h.upload(as_user("alice"), h.tiny_zip(), assignment="nope").status_code == 404


class _Breaks(io.RawIOBase):
    """A stream that fails half way, like a dropped connection."""

    def __init__(self) -> None:
        self.n = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.n += 1
        if self.n > 2:
            raise OSError("connection reset")
        return b"z" * 1000


def test_failed_upload_leaves_no_row_and_no_file(db, h, settings):
    alice, a = h.get_user(db, "alice"), h.get_assignment(db)
    with pytest.raises(OSError):
        svc.submit_upload(db, settings, lambda sid, d, lane="quick": None, user=alice, assignment=a, stream=_Breaks(),
                          filename="a.zip")
    assert count(db) == 0 and h.files_under(settings.upload_dir) == []


def test_failed_commit_leaves_no_file(db, h, settings):
    alice, a = h.get_user(db, "alice"), h.get_assignment(db)
    # Another row already holds upload number 1 (as if a concurrent upload won the race).
    db.add(Submission(user_id=alice.id, assignment_id=a.id, upload_number=1, stored_name="x/other.zip"))
    db.commit()
    db.execute(Submission.__table__.update().values(upload_number=2))
    db.add(Submission(user_id=alice.id, assignment_id=a.id, upload_number=3, stored_name="x/other2.zip"))
    db.commit()  # two rows: used == 2, next number 3 is taken -> IntegrityError
    with pytest.raises(svc.UploadRefused) as exc:
        svc.submit_upload(db, settings, lambda sid, d, lane="quick": None, user=alice, assignment=a,
                          stream=io.BytesIO(h.tiny_zip()), filename="a.zip")
    assert exc.value.status == 409
    assert count(db) == 2 and h.files_under(settings.upload_dir) == []


def test_broker_down_keeps_submission_queued_for_the_sweeper(db, h, settings):
    alice, a = h.get_user(db, "alice"), h.get_assignment(db)

    def down(sid: int, delay: float, lane: str = "quick") -> None:
        raise ConnectionError("broker down")

    sub = svc.submit_upload(db, settings, down, user=alice, assignment=a, stream=io.BytesIO(h.tiny_zip()),
                            filename="a.zip")
    assert sub.status == "queued" and sub.enqueued_at is None
    sent: list[int] = []
    assert svc.sweep(db, settings, lambda sid, d, lane="quick": sent.append(sid))["resent"] == 1
    assert sent == [sub.id]


def test_download_own_zip_not_executed_or_inlined(as_user, db, h):
    c = as_user("alice")
    r = h.upload(c, h.tiny_zip())
    sid = int(r.headers["Location"].rsplit("/", 1)[1])
    d = c.get(f"/submissions/{sid}/download")
    assert d.status_code == 200 and d.data == h.tiny_zip()
    assert d.headers["Content-Type"] == "application/zip" and "attachment" in d.headers["Content-Disposition"]
    assert d.headers["X-Content-Type-Options"] == "nosniff"
