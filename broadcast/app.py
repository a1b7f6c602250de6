"""``create_app(settings)``: the API, the public site, the adapters' webhooks, and (unless told
otherwise) the dispatcher and the scheduler, all in one process."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import tempfile
from collections.abc import Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp

from broadcast import logs
from broadcast.areas import api as areas_api
from broadcast.auditlog import api as audit_api
from broadcast.console import pages as console
from broadcast.deps import domain_error_response, unknown_path
from broadcast.errors import DomainError
from broadcast.feeds import api as feeds_api
from broadcast.feeds.poll.polling import FeedPoller
from broadcast.incidents import api as incidents_api
from broadcast.media import api as media_api
from broadcast.questions import api as questions_api
from broadcast.relay import api as relay_api
from broadcast.runtime import Services, assemble, prepare_database
from broadcast.settings import Settings
from broadcast.signup import api as signup_api
from broadcast.subscribers import api as subscribers_api
from broadcast.timeline import api as timeline_api
from broadcast.web import apidocs, cap, ops, poster, public, static_export
from broadcast.web.limits import BodyLimits
from broadcast.web.security import SecurityHeaders
from channels.base import Channel

log = logging.getLogger(__name__)


class Broadcast(FastAPI):
    """FastAPI with the security headers outermost: Starlette puts ``add_middleware`` inside
    its ServerErrorMiddleware, so an unhandled exception's 500 would go out without them."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def create_app(
    settings: Settings | None = None,
    *,
    dispatch: bool = True,
    schedule: bool = True,
    channel_classes: Iterable[type[Channel]] | None = None,
) -> FastAPI:
    settings = settings or Settings()
    db, channels = assemble(settings, channel_classes)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(prepare_database, db, settings)
        services = Services(db, channels, settings, dispatch=dispatch, schedule=schedule)
        await services.start()
        app.state.services = services
        app.state.static_export = exporter = _static_export(app, settings)
        if exporter is not None:
            await exporter.start()
        try:
            yield
        finally:
            if exporter is not None:
                await exporter.stop()
            await services.stop()
            app.state.feeds.close()

    app = Broadcast(
        title="Broadcast",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # apidocs serves them without a CDN
        redoc_url=None,
        description="Crisis communication for municipalities: one incident timeline, "
        "every channel residents already use.",
    )
    app.state.settings, app.state.db, app.state.channels = settings, db, channels
    app.state.feeds = FeedPoller(db, channels, settings)  # "poll now" from the API
    for router in (
        incidents_api.router,
        timeline_api.router,
        subscribers_api.router,
        questions_api.router,
        areas_api.router,
        media_api.router,
        media_api.files_router,
        relay_api.router,
        feeds_api.router,
        signup_api.router,
        signup_api.push_router,
        audit_api.router,
        ops.router,
        cap.router,
        public.router,
        poster.router,
    ):
        app.include_router(router)
    for channel in channels.active.values():
        if (channel_router := channel.router()) is not None:
            app.include_router(channel_router)
    console.install(app)
    public.install(app)
    apidocs.install(app)
    install_error_handlers(app)
    app.add_middleware(BodyLimits, settings=settings)  # inside SecurityHeaders: 413s get them
    return app


def _static_export(app: FastAPI, settings: Settings) -> static_export.AutoExport | None:
    if not settings.static_dir:
        return None
    directory = Path(settings.static_dir)
    return static_export.AutoExport(app.state.db.bus, lambda: static_export.publish(app, directory))


# ``broadcast serve --workers N``: uvicorn starts N processes that each import this factory.
SERVE_DISPATCH_ENV = "BROADCAST_SERVE_DISPATCH"  # "0" for --no-dispatch (set by the CLI)
_dispatch_lock = None  # held for the life of the worker process that dispatches


def app_from_settings() -> FastAPI:
    """One worker of ``serve --workers N`` (PostgreSQL only), built from the environment.

    Every worker is a scheduler candidate: the advisory lock elects one leader, as between
    hosts. Only one worker dispatches, though: several would be safe (``FOR UPDATE SKIP
    LOCKED`` and the lease hand each delivery to one process, and a paced channel is sent only
    by the owner of its lane lock), but would only hold more database connections. A file lock
    keyed by uvicorn's supervisor picks the dispatching worker; when it dies, the lock is
    released and the worker uvicorn starts in its place takes it.
    """
    settings = Settings()
    logs.configure(settings.log_level, settings.log_json)
    duties = os.environ.get(SERVE_DISPATCH_ENV, "1") == "1"
    dispatch = duties and _claim_dispatch()
    log.info("worker %s: dispatcher %s", os.getpid(), "on" if dispatch else "off")
    return create_app(settings, dispatch=dispatch, schedule=duties)


def _claim_dispatch() -> bool:
    global _dispatch_lock
    path = os.path.join(tempfile.gettempdir(), f"broadcast-dispatch-{os.getppid()}.lock")
    handle = open(path, "a")  # noqa: SIM115 (kept open: the lock lives as long as the process)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return False
    _dispatch_lock = handle
    return True


def install_error_handlers(app: FastAPI) -> None:
    """One error shape, ``{"detail": ...}`` (``deps.ErrorOut``), for domain errors, HTTP errors,
    invalid input and unexpected failures."""

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError):
        if request.url.path.startswith("/console"):
            return console.error_page(request, exc.status_code, exc.message, exc.values)
        if public.wants_page(request):
            return public.error_page(request, exc.status_code, exc.message, exc.values)
        return domain_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError):
        if (missing := unknown_path(exc)) is not None:
            return await domain_error(request, missing)
        if request.url.path.startswith("/console"):
            return console.error_page(request, 422, "; ".join(e["msg"] for e in exc.errors()))
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        # Starlette re-raises the exception after this answer, so the server logs it.
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 401:
            return JSONResponse(
                {"detail": "a bearer token is required"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if public.wants_page(request):
            return public.error_page(request, exc.status_code, str(exc.detail))
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405 and (allowed := allowed_methods(request)):
            headers = {"Allow": allowed}  # (static files answer their own 405)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def allowed_methods(request: Request) -> str:
    """Every method the path takes (Starlette's 405 names only those of the first route that
    matched the path, e.g. POST but not GET for ``/api/v1/incidents``)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    )
