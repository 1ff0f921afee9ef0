"""HMAC signatures: expiring result URLs (§4.3) and portal session cookies / CSRF tokens.

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


def make_session_cookie(secret: str, user_id: str, token_hash: str, ttl_s: int = 7 * 24 * 3600) -> str:
    """A portal session value ``<user_id>.<expires>.<sig>``.

    The signature covers the token hash, so replacing a user's token logs out every portal session.
    """
    expires = int(time.time() + ttl_s)
    sig = _hmac(secret, f"portal:{user_id}:{token_hash}:{expires}")
    return f"{user_id}.{expires}.{sig}"


def read_session_cookie(secret: str, value: str | None, token_hash_of: dict[str, str] | None = None) -> str | None:
    """Return the user id in a valid, unexpired session cookie, else ``None``.

    Args:
        secret: the service key.
        value: the cookie value.
        token_hash_of: ``{user_id: token_hash}`` for the user named in the cookie (looked up by the caller).
    """
    if not value or value.count(".") != 2:
        return None
    user_id, expires, sig = value.split(".")
    if not expires.isdigit() or int(expires) < time.time() or not token_hash_of or user_id not in token_hash_of:
        return None
    expected = _hmac(secret, f"portal:{user_id}:{token_hash_of[user_id]}:{expires}")
    return user_id if hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8", "replace")) else None


def csrf_token(secret: str, binding: str) -> str:
    """CSRF token bound to a value only the browser holds (the session cookie or a pre-login nonce)."""
    return _hmac(secret, f"csrf:{binding}")


def csrf_matches(secret: str, binding: str, received: str | None) -> bool:
    """Constant-time check of a submitted CSRF token."""
    if not received or not binding:
        return False
    return hmac.compare_digest(csrf_token(secret, binding).encode("ascii"), received.encode("utf-8", "replace"))
