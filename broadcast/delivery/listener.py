"""PostgreSQL LISTEN: events committed by any process reach this process's bus."""

from __future__ import annotations

import asyncio
import json
import logging

import psycopg

from broadcast.db import NOTIFY_CHANNEL
from broadcast.events import Bus

log = logging.getLogger(__name__)


def libpq_url(sqlalchemy_url: str) -> str:
    scheme, rest = sqlalchemy_url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgresql") else sqlalchemy_url


async def listen(database_url: str, bus: Bus) -> None:
    delay = 1.0
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                libpq_url(database_url), autocommit=True
            ) as connection:
                await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                log.info("listening for events on PostgreSQL")
                bus.publish({"kind": "listening"})
                delay = 1.0
                async for notice in connection.notifies():
                    event = json.loads(notice.payload)
                    if event.pop("origin", None) != bus.origin:  # ours went out at commit
                        bus.publish(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "LISTEN connection lost (%s); retrying in %.0f s", type(exc).__name__, delay
            )
            bus.publish({"kind": "published"})  # something may have been missed: look again
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
