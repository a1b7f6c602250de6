"""The dispatcher: one lane per channel, each claiming due deliveries in batches and sending them
through the adapter under the channel's pacer, while a recorder writes the outcomes back.

Woken at once by the ``published`` event (in-process bus, fed by PostgreSQL NOTIFY between
processes); a slow poll is only the safety net. Database work runs in threads (short sync
transactions); the sends run on the event loop, many in flight per channel.

On PostgreSQL a paced channel (a rate or a per-target interval) is sent by one process at a
time: its lane claims only while this process holds the channel's lane lock, so the in-memory
pacer, holds, pauses and circuit breaker see every send of the channel. Unpaced lanes run in
every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

from broadcast import telemetry
from broadcast.common import utcnow
from broadcast.db import Database
from broadcast.delivery import queue
from broadcast.delivery.adapters import ChannelSet
from broadcast.delivery.breaker import Breaker
from broadcast.delivery.jobs import Job, Outcome, OutcomeKind, Renderer
from broadcast.delivery.pacing import Pacer
from broadcast.delivery.policy import expired
from broadcast.locks import AdvisoryLock
from broadcast.settings import Settings
from channels.base import Channel, Limits, Message, Target
from channels.errors import TARGET, PermanentFailure, RecipientGone, RetryLater, TargetMoved

log = logging.getLogger(__name__)
UP, DOWN = "up", "down"  # what an answer says about the provider (for the circuit breaker)
GAVE_UP = "gave up: its time to live ran out while the provider was unavailable"
LANE_LOCKS = 7_141_023  # pg_try_advisory_lock(LANE_LOCKS, hashtext(channel)): one owner each


def paced(limits: Limits) -> bool:
    """Whether the provider counts this channel's sends (a rate or an interval per target)."""
    return bool(limits.per_second or limits.per_target_interval)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        channels: ChannelSet,
        settings: Settings,
        *,
        renderer: Renderer,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ):
        self.db, self.channels, self.settings = db, channels, settings
        self.renderer = renderer  # the domain's side: what a claimed row sends
        self.clock, self.sleep = clock, sleep  # the circuit breakers' (tests inject their own)
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

    @property
    def owned(self) -> list[str]:
        """The paced lanes this process sends now (on SQLite: every paced lane)."""
        return sorted(n for n, lane in self.lanes.items() if lane.owner and paced(lane.limits))

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
    """Everything one channel sends: at most ``2 × batch`` deliveries claimed at a time, at most
    ``concurrency`` of them sent and not yet recorded. A send takes a slot before it goes out
    and gives it back only once its outcome is written to the database, so a ``kill -9`` can
    leave at most ``concurrency`` deliveries sent but not recorded (the only ones another
    process sends again); the recorder writes whatever has come in as soon as it is idle, so a
    batch never holds more than that either.

    A paced lane on PostgreSQL claims only while it owns the channel's lane lock (``owner``); a
    process that loses it (its lock's connection broke) stops claiming at once, gives back the
    leases of what it had not started sending, lets the sends under way finish and record, and
    competes again."""

    def __init__(self, dispatcher: Dispatcher, channel: Channel):
        self.dispatcher, self.channel = dispatcher, channel
        self.settings = dispatcher.settings
        self.limits = channel.limits
        self.lock = (
            AdvisoryLock(
                dispatcher.db.engine, (LANE_LOCKS, channel.name), purpose=f"{channel.name} lane"
            )
            if dispatcher.db.is_postgres and paced(channel.limits)
            else None  # SQLite is one process; an unpaced channel runs in every process
        )
        self.owner = self.lock is None
        self._acquiring: asyncio.Future[bool] | None = None
        self._taken_over = False  # another process may have sent this channel just now
        self.pacer = Pacer(channel.limits)
        self.breaker = Breaker(
            failures=self.settings.breaker_failures,
            probe_seconds=self.settings.breaker_probe_seconds,
            clock=dispatcher.clock,
            sleep=dispatcher.sleep,
        )
        rate = channel.limits.per_second
        self.batch = max(10, min(500, int(rate * 2))) if rate else 200
        self.lease = self.settings.lease_seconds  # renewed while in flight (see _renew_leases)
        self.wake = asyncio.Event()
        self.concurrency = channel.limits.concurrency
        self.slots = asyncio.Semaphore(self.concurrency)  # from the send until it is recorded
        self.room = asyncio.Semaphore(2 * self.batch)  # claimed but not yet recorded
        self.outcomes: list[Outcome] = []
        self._have_outcomes = asyncio.Event()
        self.inflight: dict[int, asyncio.Task] = {}  # delivery id -> its _deliver task
        self.claimed: dict[int, Job] = {}  # delivery id -> job, until its outcome is recorded
        self._drained = asyncio.Event()  # set whenever nothing is claimed
        self._drained.set()
        self._sending: set[int] = set()  # deliveries whose request may have left
        self._rendered: dict[tuple[int, str], Message] = {}
        self._to_check: dict[int, tuple[str, asyncio.Future[bool]]] = {}
        self._checker: asyncio.Task | None = None

    async def run(self) -> None:
        recorder = asyncio.create_task(self._record_loop())
        try:
            while True:
                await self._become_owner()
                await self._send_while_owner()
                await self._hand_back()
        finally:
            for task in list(self.inflight.values()):
                task.cancel()
            self.breaker.close()
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            await self._flush()
            await self._release_lock()

    async def _send_while_owner(self) -> None:
        watchdog = asyncio.create_task(self._watch_lock()) if self.lock is not None else None
        try:
            while self.owner:
                room = await self._take_room()
                if not self.owner:
                    self._give_room(room)
                    break
                jobs = await self._claim(room)
                if jobs and not self.owner:  # the lane was lost meanwhile
                    await self._give_back({job.delivery_id: job.token for job in jobs})
                    jobs = []
                self._give_room(room - len(jobs))
                if not jobs:
                    await self._nap()
                    continue
                for job in jobs:
                    self._start(job)
        finally:
            if watchdog is not None:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog

    async def _take_room(self) -> int:
        """Claim only what there is room for: a claimed row is always in ``claimed``, so its
        lease is renewed however long it waits (an outage), never taken over."""
        await self.room.acquire()
        room = 1
        while room < self.batch and not self.room.locked():
            await self.room.acquire()  # free: returns at once
            room += 1
        return room

    def _give_room(self, room: int) -> None:
        for _ in range(room):
            self.room.release()

    def _start(self, job: Job) -> None:
        self.claimed[job.delivery_id] = job
        self._drained.clear()
        task = asyncio.create_task(self._deliver(job))
        self.inflight[job.delivery_id] = task
        task.add_done_callback(functools.partial(self._finished, job.delivery_id))

    def _finished(self, delivery_id: int, _task: asyncio.Task) -> None:
        self.inflight.pop(delivery_id, None)

    def _forget(self, delivery_id: int) -> None:
        self.claimed.pop(delivery_id, None)
        if not self.claimed:
            self._drained.set()

    # --- lane ownership (PostgreSQL, paced channels) ---------------------------------------

    async def _become_owner(self) -> None:
        if self.lock is None:
            return
        while not await self._take_lock():
            self._taken_over = True  # another process holds it: it sends meanwhile
            await asyncio.sleep(self.settings.lane_owner_retry_seconds)
        self.owner = True
        telemetry.set_lane_owner(self.channel.name, True)
        log.info("took the %s lane", self.channel.name, extra={"channel": self.channel.name})
        if self._taken_over:
            # The previous owner's last sends still count at the provider (its window, a
            # chat's interval): the first send waits them out. Not at a start nobody else
            # sent before: a pause lets the waiting sends to one chat go in any order.
            self._taken_over = False
            self.pacer.pause(
                max(1.0 if self.limits.per_second else 0.0, self.limits.per_target_interval)
            )

    async def _take_lock(self) -> bool:
        """Shielded: a cancel must not leave a lock taken that ``_release_lock`` misses."""
        assert self.lock is not None
        self._acquiring = asyncio.ensure_future(asyncio.to_thread(self.lock.try_acquire))
        return await asyncio.shield(self._acquiring)

    async def _watch_lock(self) -> None:
        """Every few seconds a cheap query on the lock's connection; when it failed, the lock
        is gone (PostgreSQL frees it with the connection) and another process may own the lane."""
        assert self.lock is not None
        while True:
            await asyncio.sleep(self.settings.lane_owner_retry_seconds)
            if not await asyncio.to_thread(self.lock.alive):
                break
        self.owner, self._taken_over = False, True
        telemetry.set_lane_owner(self.channel.name, False)
        log.warning(
            "lost the %s lane (its lock's database connection)",
            self.channel.name,
            extra={"channel": self.channel.name},
        )
        await self._abandon_unsent()
        self.wake.set()

    async def _abandon_unsent(self) -> None:
        """Drop the claimed jobs whose request has not left (the next owner sends them) and
        give their leases back; the sends under way finish and are recorded."""
        unsent = {
            delivery_id: self.claimed[delivery_id].token
            for delivery_id in self.inflight
            if delivery_id not in self._sending and delivery_id in self.claimed
        }
        for delivery_id in unsent:
            self.inflight[delivery_id].cancel()
        await self._give_back(unsent)

    async def _give_back(self, claims: dict[int, str]) -> None:
        """Let the next owner claim these rows at once instead of after their lease."""

        def give_back() -> None:
            with self.dispatcher.db.session_scope() as session:
                queue.release(session, claims)

        if claims:
            with contextlib.suppress(Exception):  # the database is down: the leases expire
                await asyncio.to_thread(give_back)

    async def _hand_back(self) -> None:
        """After losing the lane: compete again only once what this process sent is recorded."""
        await self._drained.wait()
        await self._release_lock()

    async def _release_lock(self) -> None:
        if self.lock is None:
            return
        if self._acquiring is not None:  # a try that a cancel interrupted: let it finish first
            with contextlib.suppress(Exception):
                await self._acquiring
        was_owner, self.owner = self.owner, False
        await asyncio.to_thread(self.lock.release)
        if was_owner:
            telemetry.set_lane_owner(self.channel.name, False)
            log.info(
                "released the %s lane", self.channel.name, extra={"channel": self.channel.name}
            )

    async def _claim(self, limit: int) -> list[Job]:
        def claim() -> list[Job]:
            with self.dispatcher.db.session_scope() as session:
                return queue.claim(
                    session,
                    self.channel.name,
                    limit=limit,
                    lease_seconds=self.lease,
                    renderer=self.dispatcher.renderer,
                    ttl_seconds=self.settings.delivery_ttl_seconds,
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
        if not self.owner:  # the lane was lost while we looked: no nap, hand it back
            return
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the task's own
        # cancellation when the event fires at the same moment, and stop() then waits forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.wake.wait()

    async def _deliver(self, job: Job) -> None:
        """Send one claimed job: through the breaker (while the provider is down the job waits
        here, in memory and under its renewed lease, and is sent once a probe succeeded), then
        under a slot that the recorder gives back once the outcome is written."""
        holding = queued = False
        error: str | None = None
        waited = False
        try:
            while True:
                waited = waited or not self.breaker.is_closed
                probe = await self.breaker.admit(lambda: expired(job.give_up_at, utcnow()))
                if probe is None:  # the time to live ran out while the provider was down
                    outcome = Outcome(job, OutcomeKind.retry, error=f"{GAVE_UP} ({error})")
                    await self.slots.acquire()
                    holding = True
                    break
                if waited and not await self._still_ours(job):
                    if probe:
                        self.breaker.abandoned()
                    return  # retracted or superseded meanwhile (or another process has it)
                await self.slots.acquire()
                holding = True
                if not probe and not self.breaker.is_closed:  # it opened while we queued
                    self.slots.release()
                    holding, waited = False, True
                    continue
                try:
                    outcome, verdict = await self._attempt(job)
                except BaseException:
                    if probe:
                        self.breaker.abandoned()
                    raise
                if verdict == UP:
                    self.breaker.succeeded(probe)
                elif verdict == DOWN:
                    self.breaker.failed(outcome.retry_after, probe)
                    if not self.breaker.is_closed:  # sent again once the provider is back
                        self.slots.release()
                        holding, error, waited = False, outcome.error, True
                        continue
                elif probe:
                    self.breaker.abandoned()  # it tested nothing: the next probe goes at once
                break
            self.outcomes.append(outcome)
            queued = True
            self._have_outcomes.set()
        finally:
            if not queued:
                if holding:
                    self.slots.release()
                self._forget(job.delivery_id)
                self.room.release()

    async def _still_ours(self, job: Job) -> bool:
        """After waiting out an outage: is the row still claimed by us and still to be sent?
        (A correction or retraction cancels the deliveries of its original that are still
        waiting.) Every job that woke at the same moment is checked in one query."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._to_check[job.delivery_id] = (job.token, answer)
        if self._checker is None or self._checker.done():
            self._checker = asyncio.create_task(self._check_claims())
        return await answer

    async def _check_claims(self) -> None:
        await asyncio.sleep(0)  # let every job woken by the same change join this query
        while self._to_check:
            batch, self._to_check = self._to_check, {}
            tokens = {delivery_id: token for delivery_id, (token, _) in batch.items()}

            def check(tokens=tokens) -> set[int]:
                with self.dispatcher.db.session_scope() as session:
                    return queue.still_claimed(session, tokens)

            try:
                ours = await asyncio.to_thread(check)
            except Exception:  # cannot tell: send, the guarded write-back decides
                ours = set(tokens)
            for delivery_id, (_, answer) in batch.items():
                if not answer.done():
                    answer.set_result(delivery_id in ours)

    async def _attempt(self, job: Job) -> tuple[Outcome, str | None]:
        """Send once; the outcome, and what the answer says about the provider."""
        if job.address is None or (job.update is None and job.message is None):
            return Outcome(job, OutcomeKind.failed, error="recipient no longer exists"), None
        if job.expires_at is not None and utcnow() > job.expires_at:
            return Outcome(job, OutcomeKind.failed, error="expired before it could be sent"), None
        try:
            message = self._render(job)
            target = Target(
                address=job.address,
                delivery_id=job.delivery_id,
                per_subscriber=job.per_subscriber,
                original_message_id=job.original_message_id,
                attempt=job.attempts + 1,
            )
            async with self.pacer.slot(job.address):
                self._sending.add(job.delivery_id)
                try:
                    receipt = await self.channel.send(message, target)
                finally:
                    self._sending.discard(job.delivery_id)
        except RecipientGone as exc:
            return Outcome(job, OutcomeKind.gone, error=f"recipient gone: {exc}"), UP
        except PermanentFailure as exc:
            return Outcome(job, OutcomeKind.failed, error=str(exc)), UP
        except RetryLater as exc:
            outcome = Outcome(job, OutcomeKind.retry, error=str(exc), retry_after=exc.retry_after)
            if exc.scope == TARGET:  # one busy recipient: everybody else carries on
                self.pacer.hold(job.address, exc.retry_after or 0.0)
                return outcome, UP
            if exc.retry_after:
                self.pacer.pause(exc.retry_after)
            return outcome, DOWN
        except TargetMoved as exc:
            if not job.per_subscriber:  # the operator's configuration is out of date
                log.warning(
                    "the %s broadcast target %s moved to %s: update the channel's setting",
                    self.channel.name,
                    job.address,
                    exc.new_address,
                    extra={"delivery": job.delivery_id},
                )
            outcome = Outcome(job, OutcomeKind.moved, error=str(exc), new_address=exc.new_address)
            return outcome, UP
        except Exception as exc:  # an adapter bug: retried until its time to live, then dead
            log.exception(
                "channel %s raised an unclassified error",
                self.channel.name,
                extra={"delivery": job.delivery_id},
            )
            error = f"unexpected {type(exc).__name__}: {exc}"
            return Outcome(job, OutcomeKind.retry, error=error), None
        if job.update is not None and job.update.published_at is not None:
            telemetry.observe_latency(
                self.channel.name, (utcnow() - job.update.published_at).total_seconds()
            )
        outcome = Outcome(
            job, OutcomeKind.sent, provider_id=receipt.provider_id, delivered=receipt.delivered
        )
        return outcome, UP

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
        """Write outcomes back as soon as there are any: each batch is what came in while the
        previous one was being written, never more than ``concurrency``."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.lease / 3):  # not wait_for: see _nap
                    await self._have_outcomes.wait()
            self._have_outcomes.clear()
            if not await self._flush():
                await asyncio.sleep(0.5)  # the database is unavailable: try again shortly
                self._have_outcomes.set()
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

    async def _flush(self) -> bool:
        if not self.outcomes:
            return True
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
            # Keep them (and their slots) for the next flush; if this process dies, the leases
            # expire and the rows are claimed again (the only way a duplicate can happen).
            log.exception("recording %d outcomes failed", len(batch))
            self.outcomes = batch + self.outcomes
            return False
        for outcome in batch:
            telemetry.count_outcome(self.channel.name, outcome.kind)
            self._forget(outcome.job.delivery_id)
            self.slots.release()
            self.room.release()
        if any(o.kind in (OutcomeKind.retry, OutcomeKind.moved) for o in batch):
            self.wake.set()
        return True
