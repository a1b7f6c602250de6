"""The dispatcher: one lane per channel, each claiming due deliveries in batches and sending them
through the adapter under the channel's pacer, while a recorder writes the outcomes back.

Woken at once by the ``published`` event (in-process bus, fed by PostgreSQL NOTIFY between
processes); a slow poll is only the safety net. Database work runs in threads (short sync
transactions); the sends run on the event loop, many in flight per channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from broadcast import telemetry
from broadcast.common import utcnow
from broadcast.db import Database
from broadcast.delivery import queue
from broadcast.delivery.adapters import ChannelSet
from broadcast.delivery.jobs import Job, Outcome, OutcomeKind, Renderer
from broadcast.delivery.pacing import Pacer
from broadcast.settings import Settings
from channels.base import Channel, Message, Target
from channels.errors import TARGET, PermanentFailure, RecipientGone, RetryLater, TargetMoved

log = logging.getLogger(__name__)
RECORD_EVERY = 0.05  # seconds: outcomes are written back in small batches


class Dispatcher:
    def __init__(
        self, db: Database, channels: ChannelSet, settings: Settings, *, renderer: Renderer
    ):
        self.db, self.channels, self.settings = db, channels, settings
        self.renderer = renderer  # the domain's side: what a claimed row sends
        self.lanes = {name: Lane(self, channel) for name, channel in channels.active.items()}
        self._tasks: list[asyncio.Task] = []

    def wake(self) -> None:
        for lane in self.lanes.values():
            lane.wake.set()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(lane.run(), name=f"lane-{name}")
            for name, lane in self.lanes.items()
        ]
        self._tasks.append(asyncio.create_task(self._listen(), name="dispatcher-events"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _listen(self) -> None:
        with self.db.bus.subscribe() as events:
            while True:
                event = await events.get()
                if event.get("kind") in ("published", "queued", "requeued"):
                    self.wake()


class Lane:
    """Everything one channel sends: at most ``2 × batch`` deliveries claimed at a time."""

    def __init__(self, dispatcher: Dispatcher, channel: Channel):
        self.dispatcher, self.channel = dispatcher, channel
        self.settings = dispatcher.settings
        self.pacer = Pacer(channel.limits)
        rate = channel.limits.per_second
        self.batch = max(10, min(500, int(rate * 2))) if rate else 200
        self.lease = self.settings.lease_seconds  # renewed while in flight (see _renew_leases)
        self.wake = asyncio.Event()
        self.slots = asyncio.Semaphore(channel.limits.concurrency)
        self.room = asyncio.Semaphore(2 * self.batch)  # claimed but not yet recorded
        self.outcomes: list[Outcome] = []
        self.inflight: set[asyncio.Task] = set()
        self.claimed: dict[int, Job] = {}  # delivery id -> job, until its outcome is recorded
        self._rendered: dict[tuple[int, str], Message] = {}

    async def run(self) -> None:
        recorder = asyncio.create_task(self._record_loop())
        try:
            while True:
                jobs = await self._claim()
                if not jobs:
                    await self._nap()
                    continue
                for job in jobs:
                    await self.room.acquire()
                    self.claimed[job.delivery_id] = job
                    task = asyncio.create_task(self._deliver(job))
                    self.inflight.add(task)
                    task.add_done_callback(self.inflight.discard)
        finally:
            for task in list(self.inflight):
                task.cancel()
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            await self._flush()

    async def _claim(self) -> list[Job]:
        def claim() -> list[Job]:
            with self.dispatcher.db.session_scope() as session:
                return queue.claim(
                    session,
                    self.channel.name,
                    limit=self.batch,
                    lease_seconds=self.lease,
                    renderer=self.dispatcher.renderer,
                )

        try:
            return await asyncio.to_thread(claim)
        except Exception:
            log.exception("claiming deliveries failed", extra={"channel": self.channel.name})
            await asyncio.sleep(1)
            return []

    async def _nap(self) -> None:
        def next_due():
            with self.dispatcher.db.session_scope() as session:
                return queue.next_due(session, self.channel.name)

        timeout = self.settings.safety_poll_seconds
        with contextlib.suppress(Exception):
            due = await asyncio.to_thread(next_due)
            if due is not None:
                timeout = min(timeout, max(0.0, (due - utcnow()).total_seconds()))
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)

    async def _deliver(self, job: Job) -> None:
        try:
            async with self.slots:
                outcome = await self._attempt(job)
            self.outcomes.append(outcome)
        except BaseException:
            self.claimed.pop(job.delivery_id, None)
            self.room.release()
            raise

    async def _attempt(self, job: Job) -> Outcome:
        if job.address is None or (job.update is None and job.message is None):
            return Outcome(job, OutcomeKind.failed, error="recipient no longer exists")
        if job.expires_at is not None and utcnow() > job.expires_at:
            return Outcome(job, OutcomeKind.failed, error="expired before it could be sent")
        try:
            message = self._render(job)
            target = Target(
                address=job.address,
                delivery_id=job.delivery_id,
                per_subscriber=job.per_subscriber,
                original_message_id=job.original_message_id,
            )
            async with self.pacer.slot(job.address):
                receipt = await self.channel.send(message, target)
        except RecipientGone as exc:
            return Outcome(job, OutcomeKind.gone, error=f"recipient gone: {exc}")
        except PermanentFailure as exc:
            return Outcome(job, OutcomeKind.failed, error=str(exc))
        except RetryLater as exc:
            if exc.scope == TARGET:  # one busy recipient: everybody else carries on
                self.pacer.hold(job.address, exc.retry_after or 0.0)
            elif exc.retry_after:
                self.pacer.pause(exc.retry_after)
            return Outcome(job, OutcomeKind.retry, error=str(exc), retry_after=exc.retry_after)
        except TargetMoved as exc:
            if not job.per_subscriber:  # the operator's configuration is out of date
                log.warning(
                    "the %s broadcast target %s moved to %s: update the channel's setting",
                    self.channel.name,
                    job.address,
                    exc.new_address,
                    extra={"delivery": job.delivery_id},
                )
            return Outcome(job, OutcomeKind.moved, error=str(exc), new_address=exc.new_address)
        except Exception as exc:  # an adapter bug: retried until the attempts run out, then dead
            log.exception(
                "channel %s raised an unclassified error",
                self.channel.name,
                extra={"delivery": job.delivery_id},
            )
            return Outcome(job, OutcomeKind.retry, error=f"unexpected {type(exc).__name__}: {exc}")
        if job.update is not None and job.update.published_at is not None:
            telemetry.observe_latency(
                self.channel.name, (utcnow() - job.update.published_at).total_seconds()
            )
        return Outcome(
            job, OutcomeKind.sent, provider_id=receipt.provider_id, delivered=receipt.delivered
        )

    def _render(self, job: Job) -> Message:
        if job.message is not None:  # a direct message: its text is final
            return job.message
        assert job.update is not None
        key = (job.update.id, job.language)
        if key not in self._rendered:
            if len(self._rendered) > 1000:
                self._rendered.clear()
            self._rendered[key] = self.channel.render(job.update, job.language)
        return self._rendered[key]

    async def _record_loop(self) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(RECORD_EVERY)
            await self._flush()
            if loop.time() - renewed > self.lease / 3:
                await self._renew_leases()
                self.pacer.forget_idle()
                renewed = loop.time()

    async def _renew_leases(self) -> None:
        """Rows still in flight keep their lease; only a dead process lets leases expire."""
        tokens = {job.token for job in self.claimed.values()}
        if not tokens:
            return

        def renew() -> None:
            with self.dispatcher.db.session_scope() as session:
                queue.renew(session, tokens, self.lease)

        with contextlib.suppress(Exception):
            await asyncio.to_thread(renew)

    async def _flush(self) -> None:
        if not self.outcomes:
            return
        batch, self.outcomes = self.outcomes, []

        def write() -> None:
            with self.dispatcher.db.session_scope() as session:
                queue.record(
                    session,
                    batch,
                    renderer=self.dispatcher.renderer,
                    max_attempts=self.settings.max_attempts,
                    retry_base=self.settings.retry_base_seconds,
                    retry_cap=self.settings.retry_max_seconds,
                )

        try:
            await asyncio.to_thread(write)
        except Exception:
            # Keep them for the next flush; if this process dies, the leases expire and the
            # rows are claimed again (the only way a duplicate can happen).
            log.exception("recording %d outcomes failed", len(batch))
            self.outcomes = batch + self.outcomes
            return
        for outcome in batch:
            telemetry.count_outcome(self.channel.name, outcome.kind)
            self.claimed.pop(outcome.job.delivery_id, None)
            self.room.release()
        if any(o.kind in (OutcomeKind.retry, OutcomeKind.moved) for o in batch):
            self.wake.set()
