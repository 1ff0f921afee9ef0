"""The server-rendered user portal: login, batches, batch detail, jobs, generators and account pages.

Plain HTML from Jinja2 templates (autoescaped), no JavaScript. Login exchanges username + token for a signed,
HttpOnly, SameSite=Lax session cookie; every form carries a CSRF token bound to a value only the browser holds.
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from opsin.synth import __version__
from opsin.synth.errors import UnknownGeneratorError
from opsin.synth.server._context import ServiceContext, get_context
from opsin.synth.server._serialize import display_time, result_url
from opsin.synth.server.accounting import account_summary
from opsin.synth.server.models import IN_PROGRESS_STATES, Batch, Job, JobStatus, User, hash_token
from opsin.synth.server.signing import csrf_matches, csrf_token, make_session_cookie, read_session_cookie
from opsin.synth.server.users import (
    PORTAL_SESSION_TTL_S,
    close_portal_session,
    open_portal_session,
    portal_session_user,
)

__all__ = ["html_not_found", "router"]

_STATIC = Path(__file__).parent / "static"

SESSION_COOKIE = "opsin_session"
NONCE_COOKIE = "opsin_csrf"
_STATUS_TEXT: dict[str, str] = {
    JobStatus.QUEUED: "In progress",
    JobStatus.RUNNING: "In progress",
    JobStatus.SUCCEEDED: "Done",
    JobStatus.FAILED: "Failed",
    JobStatus.CANCELLED: "Cancelled",
}

router = APIRouter(include_in_schema=False)
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)


def _kind(generator: str, is_preview: bool) -> str:
    """How the portal names a job type: previews, videos (VisionFit) or full jobs (image sets such as shapes)."""
    if is_preview:
        return "preview"
    return "video" if "visionfit" in generator else "full"


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count} bytes"


def _render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(version=__version__, **context)
    response = HTMLResponse(html, status_code=status_code)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def _portal_user(request: Request) -> User | None:
    ctx = get_context(request)
    session_id = read_session_cookie(ctx.settings.secret_key, request.cookies.get(SESSION_COOKIE))
    return None if session_id is None else portal_session_user(ctx.db, session_id)


def _login_redirect(request: Request) -> RedirectResponse:
    target = quote(request.url.path, safe="/")
    return RedirectResponse(f"/portal/login/?next={target}", status_code=303)


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/portal/") and "//" not in value and "\\" not in value:
        return value
    return "/portal/batches/"


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}


def _session_csrf(ctx: ServiceContext, request: Request) -> str:
    return csrf_token(ctx.settings.secret_key, request.cookies.get(SESSION_COOKIE, ""))


@router.get("/portal/")
def portal_root() -> Response:
    """Start page: the batch list."""
    return RedirectResponse("/portal/batches/", status_code=303)


@router.get("/portal/login/")
def login_form(request: Request, next: str | None = None) -> Response:
    """The login form (username + token)."""
    ctx = get_context(request)
    nonce = request.cookies.get(NONCE_COOKIE) or secrets.token_hex(16)
    response = _render(
        "login.html", title="Log in", user=None, error=None, next=_safe_next(next),
        csrf=csrf_token(ctx.settings.secret_key, nonce), username="",
    )  # fmt: skip
    _set_cookie(request, response, NONCE_COOKIE, nonce, max_age=3600)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/"
    )


@router.post("/portal/login/")
async def login(request: Request) -> Response:
    """Check the CSRF token and the credentials, then set the session cookie."""
    ctx = get_context(request)
    form = await _form(request)
    nonce = request.cookies.get(NONCE_COOKIE, "")
    target = _safe_next(form.get("next"))
    username = form.get("username", "").strip()
    if not csrf_matches(ctx.settings.secret_key, nonce, form.get("csrf_token")):
        return _render(
            "login.html", 403, title="Log in", user=None, error="The form expired; please try again.",
            next=target, csrf=csrf_token(ctx.settings.secret_key, nonce), username=username,
        )  # fmt: skip
    token = form.get("token", "").strip()
    user = None
    if token:
        with ctx.db.read() as session:
            user = session.scalars(select(User).where(User.token_hash == hash_token(token))).first()
    if user is None or user.username != username or not user.is_active:
        return _render(
            "login.html", 400, title="Log in", user=None, error="Unknown username or token.",
            next=target, csrf=csrf_token(ctx.settings.secret_key, nonce), username=username,
        )  # fmt: skip
    response = RedirectResponse(target, status_code=303)
    cookie = make_session_cookie(ctx.settings.secret_key, open_portal_session(ctx.db, user.id))
    _set_cookie(request, response, SESSION_COOKIE, cookie, max_age=PORTAL_SESSION_TTL_S)
    return response


@router.post("/portal/logout/")
async def logout(request: Request) -> Response:
    """End the session on the server (a saved copy of the cookie stops working) and drop the cookie."""
    ctx = get_context(request)
    form = await _form(request)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not csrf_matches(ctx.settings.secret_key, cookie, form.get("csrf_token")):
        return _render("error.html", 403, title="Forbidden", user=None, csrf="", message="Invalid CSRF token.")
    session_id = read_session_cookie(ctx.settings.secret_key, cookie)
    if session_id is not None:
        close_portal_session(ctx.db, session_id)
    response = RedirectResponse("/portal/login/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/portal/batches/")
def batches_page(request: Request) -> Response:
    """The user's batches, newest first, with progress and failures."""
    ctx = get_context(request)
    user = _portal_user(request)
    if user is None:
        return _login_redirect(request)
    with ctx.db.read() as session:
        batches = session.scalars(
            select(Batch).where(Batch.owner_id == user.id).order_by(Batch.created.desc()).limit(500)
        ).all()
        rows = []
        for batch in batches:
            statuses = list(session.scalars(select(Job.status).where(Job.batch_id == batch.id)).all())
            rows.append(
                {
                    "id": batch.id,
                    "name": batch.name,
                    "created": display_time(batch.created),
                    "generator": batch.generator,
                    "kind": _kind(batch.generator, batch.is_preview),
                    "done": sum(status not in IN_PROGRESS_STATES for status in statuses),
                    "total": len(statuses),
                    "failed": sum(status == JobStatus.FAILED for status in statuses),
                }
            )
    return _render("batches.html", title="Batches", user=user, rows=rows, csrf=_session_csrf(ctx, request))


def _not_found(request: Request, user: User | None) -> HTMLResponse:
    ctx = get_context(request)
    return _render("error.html", 404, title="Not found", user=user, csrf=_session_csrf(ctx, request),
                   message="Not found.")  # fmt: skip


@router.get("/portal/batches/{batch_id}/")
def batch_page(batch_id: str, request: Request) -> Response:
    """One batch: per job status, samples and a download link."""
    ctx = get_context(request)
    user = _portal_user(request)
    if user is None:
        return _login_redirect(request)
    try:
        key = str(uuid.UUID(batch_id))
    except ValueError:
        return _not_found(request, user)
    with ctx.db.read() as session:
        batch = session.scalars(select(Batch).where(Batch.id == key, Batch.owner_id == user.id)).first()
        if batch is None:
            return _not_found(request, user)
        jobs = session.scalars(select(Job).where(Job.batch_id == batch.id).order_by(Job.position)).all()
    base = ctx.public_base(request)
    rows = [
        {
            "id": job.id,
            "status": _STATUS_TEXT.get(job.status, job.status),
            "estimated": job.estimated_samples,
            "actual": job.actual_samples,
            "error": job.error,
            "url": result_url(job, base, ctx.settings.secret_key, ctx.settings.result_url_ttl_s),
            "purged": display_time(job.purged),
        }
        for job in jobs
    ]
    return _render(
        "batch.html", title=f"Batch {batch.name or batch.id}", user=user, batch=batch, rows=rows,
        created=display_time(batch.created), kind=_kind(batch.generator, batch.is_preview),
        csrf=_session_csrf(ctx, request),
    )  # fmt: skip


@router.get("/portal/generators/{name}/")
def generator_page(name: str, request: Request) -> Response:
    """A generator's parameter table."""
    ctx = get_context(request)
    user = _portal_user(request)
    if user is None:
        return _login_redirect(request)
    try:
        info = ctx.generator(name).describe()
    except UnknownGeneratorError:
        return _not_found(request, user)
    return _render("generator.html", title=info["name"], user=user, info=info, csrf=_session_csrf(ctx, request))


@router.get("/portal/account/")
def account_page(request: Request) -> Response:
    """Balance, reservations and usage."""
    ctx = get_context(request)
    user = _portal_user(request)
    if user is None:
        return _login_redirect(request)
    with ctx.db.read() as session:
        summary = account_summary(session, user)
    return _render(
        "account.html", title="Account", user=user, account=summary, disk=_size(summary["result_bytes"]),
        csrf=_session_csrf(ctx, request),
    )  # fmt: skip


@router.get("/portal/generators/")
def generators_page(request: Request) -> Response:
    """Every generator with its description."""
    ctx = get_context(request)
    user = _portal_user(request)
    if user is None:
        return _login_redirect(request)
    infos = [generator.describe() for generator in ctx.generators().values()]
    return _render("generators.html", title="Generators", user=user, generators=infos, csrf=_session_csrf(ctx, request))


@router.get("/portal/jobs/")
def jobs_page(request: Request) -> Response:
    """The user's most recent jobs across batches."""
    ctx = get_context(request)
    user = _portal_user(request)
    if user is None:
        return _login_redirect(request)
    with ctx.db.read() as session:
        jobs = session.scalars(
            select(Job).where(Job.owner_id == user.id).order_by(Job.created.desc(), Job.position).limit(500)
        ).all()
    rows = [
        {
            "id": job.id,
            "batch_id": job.batch_id,
            "generator": job.generator,
            "kind": _kind(job.generator, job.is_preview),
            "status": _STATUS_TEXT.get(job.status, job.status),
            "created": display_time(job.created),
            "estimated": job.estimated_samples,
            "actual": job.actual_samples,
        }
        for job in jobs
    ]
    return _render("jobs.html", title="Jobs", user=user, rows=rows, csrf=_session_csrf(ctx, request))


@router.get("/portal/static/portal.css")
def stylesheet() -> Response:
    """The portal's stylesheet (shipped with the package)."""
    return FileResponse(
        _STATIC / "portal.css", media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


def html_not_found(request: Request) -> HTMLResponse:
    """The portal's HTML 404 page (for any unknown ``/portal/`` path)."""
    return _not_found(request, _portal_user(request))


@router.get("/admin/api/batch/{batch_id}/")
def legacy_batch_link(batch_id: str) -> Response:
    """The original's batch link shape, redirected to the portal page."""
    try:
        key = str(uuid.UUID(batch_id))
    except ValueError:
        return RedirectResponse("/portal/batches/", status_code=302)
    return RedirectResponse(f"/portal/batches/{key}/", status_code=302)
