"""A static copy of the public site, for nginx, object storage or a CDN to serve when the
application cannot (``broadcast publish-static DIR``, or ``BROADCAST_STATIC_DIR`` after every
change; docs/deployment.md shows how nginx falls back to it).

Every document is requested from the application itself, in-process, so each file holds the
bytes the application serves; there is no second renderer to drift. The copy is written into a
fresh directory and then swapped in: ``DIR`` is a symbolic link, replaced by ``rename``, so a
reader sees the old tree or the new one, never half of one, and a document that no longer
exists (a retracted update's CAP file, an incident that is gone) is simply not in the new tree.

Layout (``try_files $uri $uri/index.html``): ``index.html``, ``incidents/<slug>/index.html``,
``subscribe/index.html``, the posters ``poster/index.html`` and
``incidents/<slug>/poster/index.html``; English under ``en/`` (``?lang=en`` maps there);
``feed.atom``, ``cap.atom``, ``updates/<id>.cap``; short links ``u/<id>/index.html`` as HTML
redirects to the target the application's redirect names; ``static/...`` and the ``media/...``
the pages show.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import html
import logging
import os
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlmodel import col, select
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from broadcast.events import Bus
from broadcast.incidents import service as incidents
from broadcast.timeline.models import Update, UpdateState
from broadcast.web import i18n

log = logging.getLogger(__name__)

# Events that change no public document (deliveries, drafts, the console's feed alerts).
# Anything else re-exports: a new kind of change is covered without a list to keep up to date.
QUIET_EVENTS = frozenset(
    {
        "queued",
        "requeued",
        "proposed",
        "scheduled",
        "feed_alert",
        "feed_recovered",
        "listening",
        "reminder",  # the console's notice before a promised update is due
    }
)
PAGE_LANGUAGES = {"nl": "", "en": "en/"}  # Dutch at the root, English under en/
MEDIA_LINK = re.compile(r'(?:src|href)="(/media/[^"?#]+)"')


class ExportFailed(RuntimeError):
    pass


@dataclass
class Export:
    """What one export wrote: file paths relative to the tree, and the tree itself."""

    tree: Path
    files: list[str] = field(default_factory=list)


async def publish(app: FastAPI, directory: Path) -> Export:
    """Export the site of ``app`` (started: its lifespan runs) into ``directory``."""
    directory = Path(directory).absolute()
    versions = directory.parent / f".{directory.name}.versions"
    await asyncio.to_thread(_prepare, directory, versions)
    lock = await asyncio.to_thread(_lock, versions)  # one export at a time, across processes
    try:
        tree = versions / f"{time.time_ns()}-{os.getpid()}"
        result = Export(tree)
        await asyncio.to_thread(tree.mkdir)
        try:
            await _write_documents(app, result, previous=_current_tree(directory))
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, tree, True)
            raise
        await asyncio.to_thread(_swap_in, directory, tree, versions)
        return result
    finally:
        lock.close()  # releases the flock


async def _write_documents(app: FastAPI, result: Export, *, previous: Path | None) -> None:
    settings = app.state.settings
    slugs, update_ids = await asyncio.to_thread(_public_subjects, app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url=settings.public_url,
        headers={"Accept-Encoding": "identity"},  # files as they are; the server compresses
    ) as client:
        fetch = _Fetcher(client, result)
        pages = ["/", "/subscribe", "/poster", *(f"/incidents/{slug}" for slug in slugs)]
        pages += [f"/incidents/{slug}/poster" for slug in slugs]
        media: set[str] = set()
        for language, prefix in PAGE_LANGUAGES.items():
            for path in pages:
                query = "" if language == i18n.DEFAULT else f"?lang={language}"
                body = await fetch(path + query, prefix + _page_file(path))
                if body is not None:
                    media.update(MEDIA_LINK.findall(body.decode("utf-8", "replace")))
        await fetch("/feed.atom", "feed.atom", required=True)
        await fetch("/cap.atom", "cap.atom", required=True)
        for update_id in update_ids:
            await fetch(f"/updates/{update_id}.cap", f"updates/{update_id}.cap")
            await fetch.redirect(f"/u/{update_id}", f"u/{update_id}/index.html")
        for path in sorted(media):
            await fetch.media(path, path.lstrip("/"), previous)
        for path in _static_paths(app):
            await fetch(path, path.lstrip("/"), required=True)


def _page_file(path: str) -> str:
    return "index.html" if path == "/" else f"{path.lstrip('/')}/index.html"


class _Fetcher:
    """GETs without cookies (``?lang=en`` sets one that would turn later pages English)."""

    def __init__(self, client: httpx.AsyncClient, result: Export):
        self.client, self.result = client, result

    async def __call__(self, path: str, file: str, *, required: bool = False) -> bytes | None:
        response = await self._get(path)
        if response.status_code in (404, 410) and not required:
            return None  # gone, retracted or never public: no file
        if response.status_code != 200:
            raise ExportFailed(f"GET {path} answered {response.status_code}")
        await self._write(file, response.content)
        return response.content

    async def redirect(self, path: str, file: str) -> None:
        response = await self._get(path)
        if response.status_code in (404, 410):
            return
        if not response.is_redirect:
            raise ExportFailed(f"GET {path} answered {response.status_code}, not a redirect")
        await self._write(file, redirect_page(response.headers["location"]))

    async def media(self, path: str, file: str, previous: Path | None) -> None:
        """A photo or video: stored once under a random name and never changed, so the
        previous copy's file is linked rather than read again (videos are up to 50 MB)."""
        if previous is not None and await asyncio.to_thread(
            _link, previous / file, self.result.tree / file
        ):
            self.result.files.append(file)
            return
        await self(path, file)

    async def _get(self, path: str) -> httpx.Response:
        self.client.cookies.clear()
        return await self.client.get(path)

    async def _write(self, file: str, content: bytes) -> None:
        target = self.result.tree / file
        await asyncio.to_thread(_write_file, target, content)
        self.result.files.append(file)


def redirect_page(location: str) -> bytes:
    """What a static server can say instead of the application's redirect."""
    target = html.escape(location, quote=True)
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0; url={target}">'
        f'<link rel="canonical" href="{target}"><title>&#8594;</title></head>'
        f'<body><a href="{target}">{target}</a></body></html>\n'
    ).encode()


def _public_subjects(app: FastAPI) -> tuple[list[str], list[int]]:
    """Candidates only: the application decides, by answering 404, what is not public."""
    with app.state.db.session_scope() as session:
        slugs = [incident.slug for incident in incidents.listing(session)]
        update_ids = session.exec(
            select(Update.id)
            .where(
                col(Update.public),
                col(Update.incident_id).is_not(None),
                col(Update.state).in_([UpdateState.published, UpdateState.retracted]),
            )
            .order_by(col(Update.id))
        ).all()
    return slugs, list(update_ids)


def _static_paths(app: FastAPI) -> list[str]:
    """Every file of the ``/static`` mount, as the application's URL paths."""
    for route in app.routes:
        if isinstance(route, Mount) and route.path == "/static":
            static = route.app
            assert isinstance(static, StaticFiles) and static.directory is not None  # public.py
            root = Path(static.directory)
            return sorted(
                f"/static/{path.relative_to(root).as_posix()}"
                for path in root.rglob("*")
                if path.is_file()
            )
    return []


def _current_tree(directory: Path) -> Path | None:
    return directory.resolve() if directory.is_symlink() else None


def _link(source: Path, target: Path) -> bool:
    if not source.is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        return False
    return True


def _write_file(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


def _prepare(directory: Path, versions: Path) -> None:
    if directory.exists() and not directory.is_symlink():
        if any(directory.iterdir()):
            raise ExportFailed(
                f"{directory} is a directory that publish-static did not make; it manages "
                "the path as a symbolic link to a complete copy: remove it or choose another"
            )
        directory.rmdir()  # an empty directory made for us: becomes the link
    versions.mkdir(parents=True, exist_ok=True)


def _lock(versions: Path):
    handle = (versions / ".lock").open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def _swap_in(directory: Path, tree: Path, versions: Path) -> None:
    """Point ``directory`` at ``tree`` in one rename, then remove the older trees (a file that
    is being sent stays readable until it is closed)."""
    link = directory.with_name(f".{directory.name}.link-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(os.path.relpath(tree, directory.parent), target_is_directory=True)
    os.replace(link, directory)
    for old in versions.iterdir():
        if old.is_dir() and old != tree:
            shutil.rmtree(old, ignore_errors=True)


class AutoExport:
    """``BROADCAST_STATIC_DIR``: export once at start and again after every change on the bus.

    Coalesced: at most one export runs and at most one waits; any number of events that arrive
    during an export cause exactly one more. It runs as a task of its own, its requests are
    served like any other request, and its files are written in worker threads.
    """

    def __init__(self, bus: Bus, run_export: Callable[[], Awaitable[object]]):
        self.bus, self.run_export = bus, run_export
        self.exports = 0  # finished, for the operator's logs and the tests
        self.failures = 0
        self._wanted = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        subscribed = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._watch(subscribed), name="static-export-watch"),
            asyncio.create_task(self._export_when_wanted(), name="static-export"),
        ]
        await subscribed.wait()  # no event between start and subscription goes unseen
        self._wanted.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self, subscribed: asyncio.Event) -> None:
        with self.bus.subscribe() as events:
            subscribed.set()
            while True:
                event = await events.get()
                if event.get("kind") not in QUIET_EVENTS:
                    self._wanted.set()

    async def _export_when_wanted(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()  # events from here on ask for one more export
            try:
                await self.run_export()
                self.exports += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                log.exception("static export failed; the previous copy stays in place")
