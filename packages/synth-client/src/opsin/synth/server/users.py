"""User administration and portal sessions: what ``opsin-synth admin`` and the portal's login/logout do.

Every change that should lock a person out (a new token, deactivation) deletes that user's portal sessions in the
same transaction, so a saved cookie stops working at once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from opsin.synth.errors import UnknownUserError
from opsin.synth.server.accounting import create_user
from opsin.synth.server.models import Database, Job, PortalSession, User, hash_token, utcnow

__all__ = [
    "add_samples",
    "close_portal_session",
    "create_user",
    "list_users",
    "open_portal_session",
    "portal_session_user",
    "revoke_portal_sessions",
    "rotate_token",
    "set_active",
    "set_admin",
]

PORTAL_SESSION_TTL_S = 7 * 24 * 3600


def _user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        msg = f"no user named {username!r} (see `opsin-synth admin list-users`)"
        raise UnknownUserError(msg)
    return user


def revoke_portal_sessions(session: Session, user_id: str) -> int:
    """End every portal session of a user (in the caller's transaction); returns how many."""
    result = session.execute(delete(PortalSession).where(PortalSession.user_id == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def list_users(db: Database) -> list[dict[str, Any]]:
    """Every user: name, admin and active flags, balance, samples rendered, jobs in progress, created."""
    with db.read() as session:
        rendered = dict(
            session.execute(
                select(Job.owner_id, func.coalesce(func.sum(Job.actual_samples), 0))
                .where(Job.charged.is_(True))
                .group_by(Job.owner_id)
            ).all()
        )
        users = session.scalars(select(User).order_by(User.username)).all()
        return [
            {
                "username": user.username,
                "is_admin": bool(user.is_admin),
                "is_active": bool(user.is_active),
                "sample_balance": int(user.sample_balance),
                "samples_rendered_total": int(rendered.get(user.id, 0) or 0),
                "created": user.created.replace(microsecond=0).isoformat(),
            }
            for user in users
        ]


def set_active(db: Database, username: str, active: bool) -> None:
    """Activate or deactivate a user; deactivation also ends the user's portal sessions.

    Raises:
        UnknownUserError: no such user.
    """
    with db.write() as session:
        user = _user(session, username)
        session.execute(update(User).where(User.id == user.id).values(is_active=active))
        if not active:
            revoke_portal_sessions(session, user.id)


def set_admin(db: Database, username: str, admin: bool) -> None:
    """Grant or withdraw the admin flag.

    Raises:
        UnknownUserError: no such user.
    """
    with db.write() as session:
        user = _user(session, username)
        session.execute(update(User).where(User.id == user.id).values(is_admin=admin))


def rotate_token(db: Database, username: str) -> str:
    """Give a user a new token (the old one stops working) and end its portal sessions; returns the new token.

    Raises:
        UnknownUserError: no such user.
    """
    token = secrets.token_hex(20)
    with db.write() as session:
        user = _user(session, username)
        session.execute(update(User).where(User.id == user.id).values(token_hash=hash_token(token)))
        revoke_portal_sessions(session, user.id)
    return token


def add_samples(db: Database, username: str, samples: int) -> int:
    """Add ``samples`` (negative to take some away) to a user's balance; returns the new balance.

    Raises:
        UnknownUserError: no such user.
    """
    with db.write() as session:
        user = _user(session, username)
        session.execute(
            update(User).where(User.id == user.id).values(sample_balance=User.sample_balance + int(samples))
        )
        return int(session.scalars(select(User.sample_balance).where(User.id == user.id)).one())


def open_portal_session(db: Database, user_id: str, ttl_s: int = PORTAL_SESSION_TTL_S) -> str:
    """Record a new portal session for ``user_id`` and return its id (256 random bits)."""
    session_id = secrets.token_hex(32)
    now = utcnow()
    with db.write() as session:
        session.execute(delete(PortalSession).where(PortalSession.expires < now))  # keep the table small
        session.add(
            PortalSession(id=session_id, user_id=user_id, created=now, expires=now + dt.timedelta(seconds=ttl_s))
        )
    return session_id


def portal_session_user(db: Database, session_id: str) -> User | None:
    """The active user of an unexpired portal session, else ``None``."""
    with db.read() as session:
        row = session.get(PortalSession, session_id)
        if row is None or row.expires < utcnow():
            return None
        user = session.get(User, row.user_id)
    return user if user is not None and user.is_active else None


def close_portal_session(db: Database, session_id: str) -> None:
    """End one portal session (logout)."""
    with db.write() as session:
        session.execute(delete(PortalSession).where(PortalSession.id == session_id))
