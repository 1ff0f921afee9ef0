"""HMAC signatures: expiring result URLs and portal session cookies / CSRF tokens.

Every comparison of a received signature uses :func:`hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from enum import Enum

__all__ = [
    "UrlCheck",
    "check_result_signature",
    "csrf_matches",
    "csrf_token",
    "make_session_cookie",
    "read_session_cookie",
    "result_signature",
    "signed_result_url",
]


def _hmac(secret: str, message: str) -> str:
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def result_signature(secret: str, job_id: str, expires: int) -> str:
    """HMAC-SHA256 of ``"<job_id>:<expires>"`` as lowercase hex."""
    return _hmac(secret, f"{job_id}:{expires}")


def signed_result_url(base_url: str, secret: str, job_id: str, ttl_s: int, *, now: float | None = None) -> str:
    """``<base>/api/results/<job_id>.zip?expires=<unix s>&sig=<hex>``, valid for ``ttl_s`` seconds."""
    expires = int((time.time() if now is None else now) + ttl_s)
    sig = result_signature(secret, job_id, expires)
    return f"{base_url.rstrip('/')}/api/results/{job_id}.zip?expires={expires}&sig={sig}"


class UrlCheck(Enum):
    """Outcome of checking a result URL."""

    OK = "ok"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"


def check_result_signature(
    secret: str, job_id: str, expires: str | None, sig: str | None, *, now: float | None = None
) -> UrlCheck:
    """Check a result URL's ``expires`` and ``sig``: the signature first (tampering is 403), then the expiry (410)."""
    if not expires or not sig or not expires.isdigit() or len(expires) > 12:
        return UrlCheck.BAD_SIGNATURE
    expected = result_signature(secret, job_id, int(expires))
    if not hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8", "replace")):
        return UrlCheck.BAD_SIGNATURE
    if int(expires) < (time.time() if now is None else now):
        return UrlCheck.EXPIRED
    return UrlCheck.OK


def make_session_cookie(secret: str, session_id: str) -> str:
    """A portal cookie value ``<session id>.<sig>``; the session itself (user, expiry) lives in the database."""
    return f"{session_id}.{_hmac(secret, f'portal-session:{session_id}')}"


def read_session_cookie(secret: str, value: str | None) -> str | None:
    """Return the session id of a cookie whose signature is valid, else ``None``.

    The caller still looks the session up: a logged-out or revoked session has no row, whatever the cookie says.
    """
    if not value or value.count(".") != 1:
        return None
    session_id, sig = value.split(".")
    if not session_id or len(session_id) > 64:
        return None
    expected = _hmac(secret, f"portal-session:{session_id}")
    return session_id if hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8", "replace")) else None


def csrf_token(secret: str, binding: str) -> str:
    """CSRF token bound to a value only the browser holds (the session cookie or a pre-login nonce)."""
    return _hmac(secret, f"csrf:{binding}")


def csrf_matches(secret: str, binding: str, received: str | None) -> bool:
    """Constant-time check of a submitted CSRF token."""
    if not received or not binding:
        return False
    return hmac.compare_digest(csrf_token(secret, binding).encode("ascii"), received.encode("utf-8", "replace"))
