"""What every process assembles: the database, the channels, and the background services
(PostgreSQL listener, dispatcher, scheduler) that ``serve`` and ``worker`` run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path

from broadcast import keys, migrate
from broadcast.areas import service as areas
from broadcast.db import Database
from broadcast.delivery import adapters
from broadcast.delivery.adapters import ChannelSet
from broadcast.delivery.dispatcher import Dispatcher
from broadcast.delivery.listener import listen
from broadcast.fanout.views import UpdateRenderer
from broadcast.feeds import service as feeds
from broadcast.hooks import CoreHooks
from broadcast.scheduling.scheduler import Scheduler
from broadcast.settings import Settings
from broadcast.web import live
from channels.base import Channel, ChannelContext

log = logging.getLogger(__name__)


def assemble(
    settings: Settings, channel_classes: Iterable[type[Channel]] | None = None
) -> tuple[Database, ChannelSet]:
    db = Database(settings.database_url)
    hooks = CoreHooks(db, settings)
    context = ChannelContext(
        public_url=settings.public_url,
        hooks=hooks,
        announce=live.announcer(db),
        signer=keys.LinkSigner(db.session_scope, settings),
    )
    channels = adapters.load(settings, context, channel_classes)
    hooks.channels = channels
    return db, channels


def prepare_database(db: Database, settings: Settings) -> None:
    """Migrate (PostgreSQL: under an advisory lock, so concurrent starts are safe), load the
    configured areas and the feed sources of the settings file."""
    migrate.upgrade(db.engine)
    if Path(settings.areas_file).exists():
        with db.session_scope() as session:
            areas.sync(session, areas.load_file(Path(settings.areas_file)))
    else:
        log.warning("areas file %s not found; no areas loaded", settings.areas_file)
    with db.session_scope() as session:
        feeds.sync_config(
            session,
            settings.feeds,
            min_interval=settings.feed_min_interval_seconds,
            allow_private=settings.feed_allow_private_addresses,
        )


class Services:
    def __init__(
        self,
        db: Database,
        channels: ChannelSet,
        settings: Settings,
        *,
        dispatch: bool = True,
        schedule: bool = True,
    ):
        self.db, self.channels = db, channels
        self.dispatcher = None
        if dispatch:
            renderer = UpdateRenderer(settings)
            self.dispatcher = Dispatcher(db, channels, settings, renderer=renderer)
        self.scheduler = Scheduler(db, channels, settings) if schedule else None
        self.database_url = settings.database_url
        self._listener: asyncio.Task | None = None
        self._inbound: asyncio.Task | None = None

    async def start(self) -> None:
        await self.channels.start()
        if self.db.is_postgres:
            self._listener = asyncio.create_task(listen(self.database_url, self.db.bus))
        if hooks := inbound_hooks(self.channels):  # requests a crash left unprocessed
            self._inbound = asyncio.create_task(hooks.recover_inbound_forever())
        for part in (self.dispatcher, self.scheduler):
            if part is not None:
                await part.start()

    async def stop(self) -> None:
        for part in (self.scheduler, self.dispatcher):
            if part is not None:
                await part.stop()
        for task in (self._listener, self._inbound):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.channels.close()
        self.db.dispose()


def inbound_hooks(channels: ChannelSet) -> CoreHooks | None:
    """The hooks ``assemble`` handed the channels, when this process serves their webhooks."""
    for channel in channels.active.values():
        if isinstance(hooks := channel.context.hooks, CoreHooks) and hooks.has_inbound:
            return hooks
    return None
