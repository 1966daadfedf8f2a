"""Secrets: password hashes, one-time tokens, the HMAC that authenticates workers to the web app, and
which redirect targets taken from a request may be followed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import unicodedata
import urllib.parse
from functools import cache

from werkzeug.security import check_password_hash, generate_password_hash

SIGNATURE_HEADER = "X-Autograder-Signature"
TIMESTAMP_HEADER = "X-Autograder-Timestamp"
MAX_SKEW_SECONDS = 300


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def check_password(pw_hash: str | None, password: str) -> bool:
    """Whether `password` matches `pw_hash`. Without a hash (no such user, no password set yet) a dummy hash
    of the same kind is checked instead, so that the answer takes as long either way."""
    if not pw_hash:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(pw_hash, password)


@cache
def _dummy_hash() -> str:
    """A hash of a random password with the current method and cost (made on first use, not at import)."""
    return hash_password(secrets.token_urlsafe(16))


def new_token() -> str:
    """A random API token with a fixed prefix.

    The prefix keeps a token from starting with "-" (token_urlsafe may), which a command
    line such as ``autograder submit --token T`` would take for an option, and makes a
    leaked token easy to recognise in logs and secret scanners.
    """
    return "nag_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens are stored as SHA-256 digests only (they are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def sign(secret: str, method: str, path: str, body: bytes, timestamp: str) -> str:
    """HMAC-SHA256 over method, path (with query), timestamp and the body's digest."""
    msg = "\n".join([method.upper(), path, timestamp, hashlib.sha256(body).hexdigest()]).encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def signed_headers(secret: str, method: str, path: str, body: bytes = b"") -> dict[str, str]:
    ts = str(int(time.time()))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, method, path, body, ts)}


def verify(secret: str, method: str, path: str, body: bytes, timestamp: str | None, signature: str | None,
           *, now: float | None = None) -> bool:
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_SKEW_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, method, path, body, timestamp), signature)


MAX_REDIRECT = 2048
_DOT_SEGMENTS = ("/./", "/../")


def _unsafe_form(form: str) -> bool:
    """A form of a redirect target (as sent, decoded, normalised) that could leave the origin or fool a parser."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in form):
        return True  # browsers drop tabs and newlines inside URLs: "/\t/x" becomes "//x"
    if "\\" in form:
        return True  # browsers read a backslash as a slash in http(s) URLs: "/\\x" is "//x"
    if not form.startswith("/") or form.startswith("//"):
        return True  # relative, absolute ("http:x", "javascript:"), or scheme-relative ("//host")
    path = form.split("?", 1)[0].split("#", 1)[0]
    return any(seg in path + "/" for seg in _DOT_SEGMENTS)  # "/..//x" resolves to the path "//x"


def local_redirect(target: str | None) -> str | None:
    """`target` if it is a path on this site, safe to put in a Location header; None otherwise.

    Redirect targets that come from a request (``?next=``, a form's ``back`` field) must not send the user
    to another origin. The target must be printable ASCII (the app's own URLs are percent-encoded) and an
    absolute path without scheme or host; so must every form a browser, proxy or later redirect may make of
    it: percent-decoded (repeatedly, "%252F" included) and NFKC-normalised (fullwidth solidus to "/"), none
    with control or format characters, backslashes, a leading "//" or dot segments.
    """
    if not target or len(target) > MAX_REDIRECT or not target.isascii() or not target.isprintable():
        return None
    if " " in target:
        return None
    split = urllib.parse.urlsplit(target)
    if split.scheme or split.netloc:
        return None
    form, seen = target, set()
    while form not in seen:
        seen.add(form)
        if _unsafe_form(form) or _unsafe_form(unicodedata.normalize("NFKC", form)):
            return None
        form = urllib.parse.unquote(form, errors="replace")
    return target
