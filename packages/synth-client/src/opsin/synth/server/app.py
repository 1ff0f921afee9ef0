"""The FastAPI application of the self-hosted service: ``create_app(settings)``.

It wires the REST routes, the user portal, OpenAPI at ``/api/schema/``, health, signed result downloads, the
4 MiB body limit, error bodies (``{"detail": "..."}``; validation errors become 400 with a string detail naming the
field) and the dispatcher's life cycle.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import re
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, RedirectResponse, Response

from opsin.core import get_logger
from opsin.synth import __version__
from opsin.synth.server._context import ServiceContext, get_context
from opsin.synth.server._legacy import router as legacy_router
from opsin.synth.server._responses import NOT_FOUND, ServiceHTTPError, StrictJSONResponse, error_response
from opsin.synth.server._routes import router as api_router
from opsin.synth.server.dispatcher import Dispatcher
from opsin.synth.server.generators import available_generators
from opsin.synth.server.models import Database, Job, JobStatus
from opsin.synth.server.portal import html_not_found
from opsin.synth.server.portal import router as portal_router
from opsin.synth.server.settings import Settings
from opsin.synth.server.signing import UrlCheck, check_result_signature

__all__ = ["app_from_environment", "create_app"]

_log = get_logger("opsin.synth.server")
_SWAGGER_ASSETS_URL = "/api/schema/swagger-ui/assets/"
# Swagger UI's files come from the fastapi-offline package: the page works without reaching any CDN
_SWAGGER_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
_RESULT_NAME = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.zip$")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimitMiddleware:
    """Answer 413 for request bodies larger than ``limit`` bytes (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(scope, send)
            return
        chunks: list[bytes] = []
        total = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.limit:
                await self._reject(scope, send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        response = error_response(413, f"Request body too large: the limit is {self.limit} bytes.")
        await response(scope, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = [str(item) for item in error.get("loc", ())]
        kind = error.get("type", "")
        if kind == "json_invalid":
            return f"Malformed JSON body: {error.get('msg', 'invalid JSON')}"
        where = loc[0] if loc else "request"
        field = ".".join(loc[1:]) if len(loc) > 1 else where
        label = {"body": "body field", "query": "query parameter", "path": "path parameter", "header": "header"}
        parts.append(f"{label.get(where, where)} `{field}`: {error.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts[:10]) if parts else "Invalid request."


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
    "title": "Error",
}


def _document_400(document: dict[str, Any]) -> None:
    """Say what the service answers: invalid requests are 400 ``{"detail": "..."}``, never FastAPI's 422."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if not isinstance(responses, dict) or "422" not in responses:
                continue
            del responses["422"]
            responses.setdefault(
                "400",
                {
                    "description": "Invalid request (body, parameters or headers); `detail` names the field.",
                    "content": {"application/json": {"schema": _ERROR_SCHEMA}},
                },
            )
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _dispatcher_lock(path: Path) -> Any:
    """An exclusive lock on ``path`` when no other process holds it (the kernel frees it when the holder dies)."""
    import fcntl

    handle = open(path, "a+b")  # noqa: SIM115 - kept open for as long as this process dispatches
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def app_from_environment() -> FastAPI:
    """App factory of the API worker processes of ``serve --api-workers N`` (settings in ``OPSIN_SYNTH_SETTINGS``)."""
    import os

    return create_app(Settings.from_json(os.environ["OPSIN_SYNTH_SETTINGS"]))


def create_app(settings: Settings) -> FastAPI:
    """Build the service app.

    Args:
        settings: the configuration; the database tables are created when missing. The dispatcher starts with the
            app (ASGI lifespan) unless ``settings.start_dispatcher`` is false.

    Returns:
        The FastAPI application.
    """
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.results_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = Database(settings.db_url)
    db.create_all()
    available_generators()  # (re)scan the plugins once per app, so an app sees what is installed when it starts
    ctx = ServiceContext(settings=settings, db=db)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lock = None
        if settings.start_dispatcher and settings.api_workers > 1:
            lock = _dispatcher_lock(settings.data_dir / "dispatcher.lock")
        if settings.start_dispatcher and (settings.api_workers <= 1 or lock is not None):
            ctx.dispatcher = Dispatcher(db, settings)
            ctx.dispatcher.start()
        try:
            yield
        finally:
            if ctx.dispatcher is not None:
                ctx.dispatcher.stop()
                ctx.dispatcher = None
            if lock is not None:
                lock.close()
            db.dispose()

    app = FastAPI(
        title="opsin-synth service",
        version=__version__,
        description=(
            "Self-hosted synthetic-data generation service speaking the original REST contract. Authenticate with "
            "`Authorization: Token <token>`."
        ),
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=StrictJSONResponse,
    )
    app.state.ctx = ctx

    @app.exception_handler(ServiceHTTPError)
    async def _service_error(_: Request, exc: ServiceHTTPError) -> Response:
        return error_response(exc.status_code, exc.detail, exc.headers or None, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        return error_response(400, _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and request.url.path.startswith("/portal/"):
            return await run_in_threadpool(html_not_found, request)  # people get a page, not JSON
        if exc.status_code == 404:
            detail = NOT_FOUND
        return error_response(exc.status_code, detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        _log.exception("unhandled error", exc_info=exc)
        return error_response(500, "Internal server error.")

    app.include_router(api_router)
    app.include_router(legacy_router)
    app.include_router(portal_router)

    @app.get("/api/health/", summary="Health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness without authentication: `{"status": "ok", "version"}`."""
        return {"status": "ok", "version": __version__}

    @app.get("/api/results/{filename}", summary="Download a result", tags=["service"], response_model=None)
    def download_result(
        filename: str, request: Request, expires: str | None = None, sig: str | None = None
    ) -> Response:
        """Signed, expiring result download (no auth header): 403 bad signature, 410 expired, 404 purged."""
        match = _RESULT_NAME.match(filename)
        if match is None:
            raise ServiceHTTPError(404, NOT_FOUND)
        job_id = match.group(1)
        check = check_result_signature(settings.secret_key, job_id, expires, sig)
        if check is UrlCheck.BAD_SIGNATURE:
            raise ServiceHTTPError(403, "Invalid result URL signature.")
        if check is UrlCheck.EXPIRED:
            raise ServiceHTTPError(410, "Result URL expired; fetch a fresh one from the batch summary.")
        with get_context(request).db.read() as session:
            job = session.scalars(select(Job).where(Job.id == job_id)).first()
        if job is not None and job.purged is not None:
            when = job.purged.replace(microsecond=0).isoformat()
            raise ServiceHTTPError(404, f"Result purged on {when} (the service keeps results for a limited time).")
        path = Path(job.result_path) if job is not None and job.result_path else None
        if job is None or job.status != JobStatus.SUCCEEDED or path is None or not path.is_file():
            raise ServiceHTTPError(404, NOT_FOUND)
        return FileResponse(path, media_type="application/zip", filename=f"{job_id}.zip")

    @app.get("/api/schema/", include_in_schema=False)
    def schema(request: Request, format: str | None = None) -> Response:
        document = app.openapi()
        accept = request.headers.get("accept", "")
        if format == "yaml" or ("application/vnd.oai.openapi" in accept and "json" not in accept):
            text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
            return Response(text, media_type="application/vnd.oai.openapi; charset=utf-8")
        return StrictJSONResponse(document)

    @app.get("/api/schema/swagger-ui/", include_in_schema=False)
    def swagger_ui() -> Response:
        return get_swagger_ui_html(
            openapi_url="/api/schema/",
            title="opsin-synth API",
            swagger_js_url=f"{_SWAGGER_ASSETS_URL}swagger-ui-bundle.js",
            swagger_css_url=f"{_SWAGGER_ASSETS_URL}swagger-ui.css",
            swagger_favicon_url=f"{_SWAGGER_ASSETS_URL}favicon.png",
        )

    @app.get(_SWAGGER_ASSETS_URL + "{name}", include_in_schema=False)
    def swagger_asset(name: str) -> Response:
        media = _SWAGGER_ASSETS.get(name)
        if media is None:
            raise ServiceHTTPError(404, NOT_FOUND)
        path = Path(str(importlib.resources.files("fastapi_offline") / "static" / name))
        return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/portal/batches/", status_code=307)

    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = original_openapi()
            document.setdefault("servers", [{"url": "/"}])
            _document_400(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    return app
