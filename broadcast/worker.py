"""``broadcast worker``: the dispatcher and a scheduler candidate, without the web server."""

from __future__ import annotations

import asyncio
import logging

from broadcast.runtime import Services, assemble, prepare_database
from broadcast.settings import Settings

log = logging.getLogger(__name__)


async def run_worker(settings: Settings, stop_signals=()) -> None:
    db, channels = assemble(settings)
    await asyncio.to_thread(prepare_database, db, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in stop_signals:
        loop.add_signal_handler(sig, stop.set)
    services = Services(db, channels, settings)
    await services.start()
    log.info("worker running")
    try:
        await stop.wait()
    finally:
        await services.stop()
